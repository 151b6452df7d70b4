"""Table I, CCA (Hardoon et al. 2004): closed-form linear CCA on the training split."""

from configs import default


def get_config():
  config = default.get_config()
  config.rerank.enabled = False  # Tables I and II compare bi-encoders (the paper's systems).
  config.method = 'cca'
  config.model.image_pool = 4  # Image average-pooled 4x4 (16 x 16 = 256 features) + box.
  config.model.cca_components = 40  # Canonical pairs kept (the trajectory has 40 features).
  config.model.cca_reg = 1e-2  # Ridge on each covariance, times its mean variance.
  config.model.cca_score = 'gaussian'  # 'gaussian' (pair log-likelihood ratio) or 'cosine'.
  return config
