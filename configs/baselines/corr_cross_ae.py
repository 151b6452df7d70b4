"""Table I, Corr-Cross-AE (Feng et al. 2014): Corr-AE rebuilding each modality from the other."""

from configs.baselines import corr_ae


def get_config():
  config = corr_ae.get_config()
  config.method = 'corr_cross_ae'
  return config
