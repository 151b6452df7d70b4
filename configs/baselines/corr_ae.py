"""Table I, Corr-AE (Feng et al. 2014): two autoencoders with tied codes.

The image pool and alpha were chosen on the validation split at the equal budget
(benchmarks/results/baseline_tuning.md): 32 x 32 pixels and alpha 0.5 left validation top@1
near 1 %, the image's reconstruction outweighing the tie between the codes.
"""

from configs.baselines import common


def get_config():
  config = common.get_config(
    'corr_ae',
    image_pool=8,  # Image average-pooled 8x8 (8 x 8 = 64 features) + box.
    ae_hidden=(512,),  # Encoder hidden layers (the decoder mirrors them).
    code_dim=64,  # The code, the common space.
  )
  config.train.corr_alpha = 0.95  # alpha: loss = (1 - alpha) reconstruction + alpha correlation.
  config.train.learning_rate = 1e-3  # Its Table I run's rate, kept: 3e-3 and 3e-4 were no better.
  return config
