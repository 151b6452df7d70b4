"""Checks a config before any work starts, so a bad value is one clear line, not a traceback.

The one place for config checks: the modules that read a field trust it.
"""

import ml_collections

from trajcross_jax.data import pipeline
from trajcross_jax.data.builder import DATASETS, TrajcrossConfig
from trajcross_jax.data.normalisation import UNIT
from trajcross_jax.methods import METHODS, get_method
from trajcross_jax.methods.cca import SCORES as CCA_SCORES
from trajcross_jax.models.trajectory import SHAPE_BRANCHES

SPLITS = ('test', 'validation')
NORMALISATIONS = ('train', 'target')

# Fields that must be positive numbers.
_POSITIVE = (
  'data.window_length',
  'data.stride',
  'data.num_threads',
  'train.batch_size',
  'train.num_epochs',
  'train.learning_rate',
  'train.temperature',
  'train.log_every_steps',
  'train.checkpoint_every_steps',
  'train.keep_checkpoints',
  'eval.batch_size',
  'eval.near_duplicate_m',
  'embed.shard_size',
  'embed.batch_size',
  'index.max_memory_mb',
  'index.num_queries',
  'index.target_recall',
  'search.k',
  'rerank.candidates',
  'rerank.hard_pool',
  'rerank.batch_size',
  'rerank.num_epochs',
  'rerank.learning_rate',
  'rerank.hidden',
  'rerank.line_width',
  'rerank.hypotheses',
)
# Fields with a fixed set of values.
_CHOICES = {
  'embed.split': ('train', 'test', 'validation'),
  'embed.dtype': ('float32', 'float16'),
  'index.modality': ('trajectory', 'image'),
  'index.kind': ('exact', 'faiss'),
  'train.adversarial_schedule': ('constant', 'dann'),
  'train.disc_schedule': ('constant', 'cosine'),
  'rerank.scorer': ('pair', 'track'),
}
# config.model's fields (and a method's own train fields) by method: each method's model section
# holds only its own fields (configs/baselines/*.py), so these checks depend on config.method.
_MODEL_CHOICES = {
  'trajcross': {'model.traj_shape_branch': SHAPE_BRANCHES},
  'cca': {'model.cca_score': CCA_SCORES},
}
_MODEL_POSITIVE = {
  'trajcross': ('model.branch_dim', 'model.image_shape_pool'),
  'moco': (
    'model.branch_dim',
    'model.embed_dim',
    'model.moco_queue_size',
    'model.traj_raster_size',
    'train.moco_key_window',
  ),
  'dbrlm': ('model.branch_dim', 'model.embed_dim'),
  'acmr': ('model.embed_dim', 'model.image_pool'),
  'cca': ('model.cca_components', 'model.image_pool'),
  'corr_ae': ('model.code_dim', 'model.image_pool'),
  'corr_cross_ae': ('model.code_dim', 'model.image_pool'),
}
# Fields that must be numbers in [0, 1).
_UNIT_INTERVAL = (
  'data.validation_fraction',
  'train.disc_label_smoothing',
  'train.clean_fraction',
  'rerank.clean_fraction',
)
# Shares of clean pairs in a hard dataset's re-drawn training pairs, with the switch that
# re-draws them: a run that trains without both a hard dataset and the switch would not read
# the share. Other modes ignore it, so that a mixed model is scored on univ with its own flags.
_CLEAN_FRACTIONS = {
  'train.clean_fraction': 'train.redraw_images',
  'rerank.clean_fraction': 'rerank.redraw_images',
}
# The main.py modes that train (the bi-encoder, the re-ranker or both).
TRAINING_MODES = ('train', 'train_and_eval', 'rerank')
# The modality game's options and their off values, and the methods that read each: another
# method, or TRAJCROSS without its classifier (nogan), would ignore a value silently.
_GAME_OPTIONS = {
  'train.adversarial_schedule': 'constant',
  'train.disc_schedule': 'constant',
  'train.disc_label_smoothing': 0.0,
  'train.disc_gradient_penalty': 0.0,
}
_GAME_READERS = {'trajcross': tuple(_GAME_OPTIONS), 'acmr': ('train.adversarial_schedule',)}
_NON_NEGATIVE = (
  'train.warmup_steps',
  'train.weight_decay',
  'train.adversarial_weight',
  'train.disc_gradient_penalty',
  'train.eval_every_epochs',
  'rerank.warmup_steps',
  'rerank.stem',
  'rerank.endpoint_width',
  'rerank.point_features',
  'rerank.nll_weight',
  'rerank.bi_weight',
  'index.refine',
)


def _get(config: ml_collections.ConfigDict, dotted: str):
  value = config
  for part in dotted.split('.'):
    value = value[part]
  return value


def validate(config: ml_collections.ConfigDict, mode: str = 'train_and_eval') -> None:
  """Raises ValueError naming the first field with a bad value for main.py's `mode`."""
  if config.method not in METHODS:
    raise ValueError(f'config.method={config.method!r}: must be one of {sorted(METHODS)}')
  if config.data.name not in DATASETS:
    raise ValueError(f'config.data.name={config.data.name!r}: must be one of {DATASETS}')
  for field in _POSITIVE + _MODEL_POSITIVE[config.method]:
    value = _get(config, field)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
      raise ValueError(f'config.{field}={value!r}: must be a positive number')
  group, pool = config.rerank.group, config.rerank.hard_pool
  if isinstance(group, bool) or not isinstance(group, int) or not 2 <= group <= pool + 1:
    raise ValueError(
      f'config.rerank.group={group!r}: must be an integer from 2 to rerank.hard_pool + 1 '
      f'({pool + 1})'
    )
  for field in _NON_NEGATIVE:
    value = _get(config, field)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
      raise ValueError(f'config.{field}={value!r}: must be a non-negative number')
  # 'custom' takes every window of its pools with size 0; the protocol's datasets draw n >= 1.
  least = 0 if config.data.name == 'custom' else 1
  for field in ('train_size', 'test_size'):
    value = config.data[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
      raise ValueError(f'config.data.{field}={value!r}: must be an integer >= {least}')
  try:
    hard_data = pipeline.hard_options(config.data).active
  except ValueError as e:
    raise ValueError(f'config.data.hard: {e}') from None
  if config.data.name == 'custom':
    if 'files' not in config.data:
      raise ValueError("config.data.name='custom' needs the fields of configs/custom.py: use it")
    pipeline.custom_options(config.data)  # Raises custom.CustomDataError, naming the field.
    if not config.data.files:
      raise ValueError('config.data.files is empty: name your recordings (a path or a glob)')
  if 0 < config.data.train_size < config.train.batch_size:
    raise ValueError(
      f'config.train.batch_size={config.train.batch_size} is larger than '
      f'config.data.train_size={config.data.train_size}'
    )
  for field in _UNIT_INTERVAL:
    value = _get(config, field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
      raise ValueError(f'config.{field}={value!r}: must be in [0, 1)')
  for field, switch in _CLEAN_FRACTIONS.items() if mode in TRAINING_MODES else ():
    if _get(config, field) > 0 and not (hard_data and _get(config, switch)):
      raise ValueError(
        f'config.{field}={_get(config, field)!r}: needs a hard dataset (data/hard.py) and '
        f'config.{switch}=True, which re-draw the training pairs it mixes'
      )
  if config.rerank.nll_weight > 0 and config.rerank.scorer != 'track':
    raise ValueError(
      f'config.rerank.nll_weight={config.rerank.nll_weight!r}: only the track scorer '
      "(config.rerank.scorer='track') gives log densities to take a likelihood of"
    )
  if config.rerank.point_features > 0:
    if config.rerank.scorer != 'pair':
      raise ValueError(
        f'config.rerank.point_features={config.rerank.point_features!r}: only the pair scorer '
        "(config.rerank.scorer='pair') reads its feature maps at the trajectory's points"
      )
    if config.data.window_length < 2:
      raise ValueError(
        f'config.rerank.point_features={config.rerank.point_features!r}: continuing the '
        f'ends needs config.data.window_length >= 2, got {config.data.window_length}'
      )
  fraction = config.data.validation_fraction
  if config.eval.split not in SPLITS:
    raise ValueError(f'config.eval.split={config.eval.split!r}: must be one of {SPLITS}')
  if config.eval.split == 'validation' and fraction == 0:
    raise ValueError(
      "config.eval.split='validation' needs config.data.validation_fraction > 0 (the share of "
      'training pedestrians held out)'
    )
  for field, allowed in {**_CHOICES, **_MODEL_CHOICES.get(config.method, {})}.items():
    if _get(config, field) not in allowed:
      raise ValueError(f'config.{field}={_get(config, field)!r}: must be one of {allowed}')
  plays = config.method != 'trajcross' or config.model.adversarial
  read = _GAME_READERS.get(config.method, ()) if plays else ()
  for field, off in _GAME_OPTIONS.items():
    if field not in read and _get(config, field) != off:
      why = (
        f'method {config.method!r} does not read it'
        if plays
        else 'nogan (model.adversarial=False) has no modality classifier to apply it to'
      )
      raise ValueError(f'config.{field}={_get(config, field)!r}: {why}')
  modalities = tuple(config.embed.modalities)
  if not modalities or not set(modalities) <= {'trajectory', 'image'}:
    raise ValueError(
      f"config.embed.modalities={modalities!r}: must be 'trajectory', 'image' or both"
    )
  if config.index.target_recall > 1:
    raise ValueError(f'config.index.target_recall={config.index.target_recall}: must be <= 1')
  if config.embed.split == 'validation' and config.data.validation_fraction == 0:
    raise ValueError("config.embed.split='validation' needs config.data.validation_fraction > 0")
  if config.eval.normalisation not in NORMALISATIONS:
    raise ValueError(
      f'config.eval.normalisation={config.eval.normalisation!r}: must be one of {NORMALISATIONS}'
    )
  image_size = TrajcrossConfig.image_size
  for field in ('image_shape_pool', 'image_pool'):
    if field in config.model and image_size % config.model[field]:
      raise ValueError(
        f'config.model.{field}={config.model[field]}: must divide the {image_size}-pixel image'
      )
  # Building the method finds a field its config lacks (config.model is checked above, by
  # method); the scene frame comes from the data later, any frame will do for the check.
  get_method(config, UNIT)
