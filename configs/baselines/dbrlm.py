"""Table I, DBRLM (He et al. 2016): two CNNs, bidirectional likelihood over cosine scores."""

from configs import default


def get_config():
  config = default.get_config()
  config.rerank.enabled = False  # Tables I and II compare bi-encoders (the paper's systems).
  config.method = 'dbrlm'
  config.model.embed_dim = 256  # The common space.
  config.train.dbrlm_gamma = 10.0  # Fixed scale of the cosine inside the softmax.
  config.train.learning_rate = 1e-3  # Its Table I run's rate (not TRAJCROSS's tuned one).
  config.train.num_epochs = 12  # 468 steps: train + eval took 7 min on 2 shared CPU cores.
  return config
