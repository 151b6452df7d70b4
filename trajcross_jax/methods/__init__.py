"""Methods: TRAJCROSS and the paper's baselines, selected by `config.method`."""

import ml_collections

from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods.acmr import ACMR
from trajcross_jax.methods.base import Method
from trajcross_jax.methods.cca import CCA
from trajcross_jax.methods.corr_ae import CorrAE, CorrCrossAE
from trajcross_jax.methods.dbrlm import DBRLM
from trajcross_jax.methods.moco import MoCo
from trajcross_jax.methods.trajcross import TrajCross

METHODS = {
  'trajcross': TrajCross,
  # Table I's baselines (configs/baselines/).
  'cca': CCA,
  'moco': MoCo,
  'acmr': ACMR,
  'corr_ae': CorrAE,
  'corr_cross_ae': CorrCrossAE,
  'dbrlm': DBRLM,
}


def get_method(
  config: ml_collections.ConfigDict, normalisation: Normalisation, total_steps: int | None = None
) -> Method:
  """Builds the method that `config.method` names, reading positions in `normalisation`.

  The scene frame comes from the data (a dataset's metadata, or the checkpoint that a model was
  trained with): see trajcross_jax.data.normalisation. validation.py checks the name.
  `total_steps`, the training run's length, is given by train.py; only MoCo reads it (its key
  encoder's momentum is scaled to the run), and only to train.
  """
  args = (config.model, config.train, normalisation)
  if config.method == 'moco':
    return MoCo(*args, total_steps=total_steps)
  return METHODS[config.method](*args)
