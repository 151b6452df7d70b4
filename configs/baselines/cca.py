"""Table I, CCA (Hardoon et al. 2004): closed-form linear CCA on the training split."""

from configs.baselines import common


def get_config():
  return common.get_config(
    'cca',
    image_pool=8,  # Image average-pooled 8x8 (8 x 8 = 64 features) + box; chosen on validation.
    cca_components=40,  # Canonical pairs kept (the trajectory has 40 features).
    cca_reg=1e-2,  # Ridge on each covariance, times its mean variance.
    cca_score='gaussian',  # 'gaussian' (pair log-likelihood ratio) or 'cosine'.
  )
