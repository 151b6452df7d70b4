"""Table I, Corr-Cross-AE (Feng et al. 2014): Corr-AE rebuilding each modality from the other.

Its own fields, chosen on the validation split at the equal budget apart from Corr-AE's
(benchmarks/results/baseline_tuning.md).
"""

from configs.baselines import corr_ae


def get_config():
  config = corr_ae.get_config()
  config.method = 'corr_cross_ae'
  config.model.image_pool = 8  # Image average-pooled 8x8 (8 x 8 = 64 features) + box.
  config.train.corr_alpha = 0.5  # alpha: loss = (1 - alpha) reconstruction + alpha correlation.
  config.train.learning_rate = 3e-3  # Chosen on validation (1e-3 before).
  return config
