"""Table I, ACMR (Wang et al. 2017): MLP projectors, triplet loss, reversed modality classifier."""

from configs.baselines import common


def get_config():
  config = common.get_config(
    'acmr',
    image_pool=2,  # Image average-pooled 2x2 (32 x 32 = 1024 features) + box.
    acmr_hidden=(512,),  # Hidden layers of each MLP projector.
    embed_dim=128,  # The common space.
    disc_hidden=(256, 256),  # The modality classifier's hidden layers (TRAJCROSS's).
  )
  config.train.acmr_margin = 0.2  # Triplet margin on cosine scores.
  config.train.adversarial_weight = 1.0  # Peak reversal lambda (DANN/ACMR schedule reaches 1).
  config.train.adversarial_schedule = 'dann'  # ACMR's ramp of lambda over training.
  config.train.learning_rate = 1e-3  # Its Table I run's rate (not TRAJCROSS's tuned one).
  return config
