"""Table I, ACMR (Wang et al. 2017): MLP projectors, triplet loss, reversed modality classifier."""

from configs import default


def get_config():
  config = default.get_config()
  config.rerank.enabled = False  # Tables I and II compare bi-encoders (the paper's systems).
  config.method = 'acmr'
  config.model.image_pool = 2  # Image average-pooled 2x2 (32 x 32 = 1024 features) + box.
  config.model.acmr_hidden = (512,)  # Hidden layers of each MLP projector.
  config.model.embed_dim = 128  # The common space.
  config.train.acmr_margin = 0.2  # Triplet margin on cosine scores.
  config.train.adversarial_weight = 1.0  # Peak reversal lambda (DANN/ACMR schedule reaches 1).
  config.train.learning_rate = 1e-3  # Its Table I run's rate (not TRAJCROSS's tuned one).
  config.train.num_epochs = 60  # 2,340 steps: train + eval took 4 min on 2 shared CPU cores.
  return config
