"""Methods: TRAJCROSS and the paper's baselines, selected by `config.method`."""

import ml_collections

from trajcross_jax.methods.base import Method
from trajcross_jax.methods.trajcross import TrajCross

METHODS = {'trajcross': TrajCross}


def get_method(config: ml_collections.ConfigDict) -> Method:
  """Builds the method that `config.method` names."""
  if config.method not in METHODS:
    raise ValueError(f'config.method={config.method!r} is not one of {sorted(METHODS)}')
  return METHODS[config.method](config.model, config.train)
