"""Table I, Corr-AE (Feng et al. 2014): two autoencoders with tied codes."""

from configs.baselines import common


def get_config():
  config = common.get_config(
    'corr_ae',
    image_pool=2,  # Image average-pooled 2x2 (32 x 32 = 1024 features) + box.
    ae_hidden=(512,),  # Encoder hidden layers (the decoder mirrors them).
    code_dim=64,  # The code, the common space.
  )
  config.train.corr_alpha = 0.5  # alpha: loss = (1 - alpha) reconstruction + alpha correlation.
  config.train.learning_rate = 1e-3  # Its Table I run's rate (not TRAJCROSS's tuned one).
  return config
