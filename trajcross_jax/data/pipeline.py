"""From the tfds data source to training and evaluation batches.

A split is read either into host memory (small splits: the paper's 10,000 pairs are 42 MB) or
streamed from its array_record files; both go through the same grain pipeline, which maps a
global step to the indices of its batch. The order is therefore a pure function of
(seed, step): resuming at step s gives exactly the batches an uninterrupted run would.
"""

import dataclasses
import functools
from collections.abc import Iterator
from typing import Protocol

import grain
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from trajcross_jax.data import builder as builder_lib
from trajcross_jax.data import custom, geo, hard
from trajcross_jax.data import normalisation as normalisation_lib

# The features the models consume; the others (source, ped_id, ...) trace an example back.
MODEL_FEATURES = ('trajectory', 'image', 'box')


class Source(Protocol):
  """Random access to a split: len() and a batch of examples by index."""

  def __len__(self) -> int: ...

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]: ...


class ArraySource:
  """A split held in host memory as one numpy array per feature."""

  def __init__(self, arrays: dict[str, np.ndarray]):
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1:
      raise ValueError(
        f'features have different lengths: { {k: len(v) for k, v in arrays.items()} }'
      )
    self.arrays = arrays

  def __len__(self) -> int:
    return len(next(iter(self.arrays.values())))

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[indices] for k, v in self.arrays.items()}


class StreamingSource:
  """A split read example by example from its array_record files (for splits too large to hold)."""

  def __init__(self, data_source, features: tuple[str, ...] = MODEL_FEATURES):
    self.data_source = data_source
    self.features = features

  def __len__(self) -> int:
    return len(self.data_source)

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    examples = self.data_source.__getitems__([int(i) for i in indices])
    return {k: np.stack([np.asarray(e[k]) for e in examples]) for k in self.features}


def get_builder(data: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """The tfds builder for the dataset that `config.data` names."""
  common = dict(
    seed=data.seed,
    window_length=data.window_length,
    stride=data.stride,
    train_size=data.train_size,
    test_size=data.test_size,
    hard=hard_options(data),
  )
  if data.name == 'custom':
    config = builder_lib.custom_config(data.files, custom_options(data), **common)
    return builder_lib.Trajcross(config=config, data_dir=data.data_dir)
  if builder_lib.registered(data.name).source == 'synthetic':
    common.update(plaza=tuple(data.plaza), origin=tuple(data.origin))
  return builder_lib.make_builder(data.name, data.data_dir, univ_download=data.download, **common)


def hard_options(data: ml_collections.ConfigDict) -> hard.HardOptions:
  """The dataset's hard rules: its registered config's, with the fields config.data.hard sets.

  Raises:
    ValueError: a rule's value is out of range (the message names the rule).
  """
  base = hard.PAPER if data.name == 'custom' else builder_lib.registered(data.name).hard
  changes = {k: v for k, v in (data.get('hard') or {}).items() if v is not None}
  return dataclasses.replace(base, **changes)


def custom_options(data: ml_collections.ConfigDict) -> custom.Options:
  """How to read the user's recordings, from configs/custom.py's fields."""
  return custom.Options(
    format=data.format,
    columns=tuple(sorted(dict(data.columns).items())),
    delimiter=data.delimiter,
    track_property=data.track_property,
    time_property=data.time_property,
    projection=data.projection,
    resample=data.resample,
    time_step=data.time_step,
    spacing=data.spacing,
    max_gap=data.max_gap,
    split_by=data.split_by,
    test_fraction=data.test_fraction,
    test_files=tuple(data.test_files),
    on_bad_row=data.on_bad_row,
  )


def normalisation(builder: tfds.core.DatasetBuilder) -> normalisation_lib.Normalisation:
  """The scene frame a prepared dataset stored: its training split's centre and scale."""
  record = (
    builder.info.metadata.get(normalisation_lib.METADATA_KEY) if builder.info.metadata else None
  )
  if record is None:
    raise ValueError(
      f'{builder.info.full_name} in {builder.data_dir} records no scene frame (built by an older '
      'version): delete that directory to rebuild it'
    )
  return normalisation_lib.Normalisation.from_json(record)


def projection(builder: tfds.core.DatasetBuilder) -> geo.Projection | None:
  """The lon/lat projection of a prepared dataset, or None when its data came in metres."""
  record = builder.info.metadata.get('projection') if builder.info.metadata else None
  return None if record is None else geo.Projection.from_json(record)


def prepare(data: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """Builds the dataset if it is not there yet (as tfds.load does) and returns its builder."""
  builder = get_builder(data)
  if not builder.is_prepared():
    logging.info('Building %s into %s', builder.info.full_name, builder.data_dir)
    builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=data.manual_dir)
    )
  return builder


def load_split(
  builder: tfds.core.DatasetBuilder, split: str, in_memory: bool, features=MODEL_FEATURES
) -> Source:
  """A split of a prepared dataset, in memory or streamed."""
  data_source = builder.as_data_source(split=split)
  streaming = StreamingSource(data_source, features)
  if not in_memory:
    return streaming
  return ArraySource(streaming.get_batch(np.arange(len(streaming))))


class SubsetSource:
  """Some of a split's examples, by their indices in it."""

  def __init__(self, source: Source, indices: np.ndarray):
    self.source = source
    self.indices = np.asarray(indices, np.int64)

  def __len__(self) -> int:
    return len(self.indices)

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    return self.source.get_batch(self.indices[indices])


def pedestrian_keys(recordings: np.ndarray, ped_ids: np.ndarray) -> np.ndarray:
  """One string per example naming its pedestrian: 'recording/ped_id'."""
  return np.char.add(np.char.add(recordings.astype(str), '/'), ped_ids.astype(str))


def held_out_pedestrians(
  recordings: np.ndarray, ped_ids: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
  """Which examples belong to the pedestrians held out for validation: a boolean mask.

  Whole pedestrians are held out (each (recording, ped_id) with probability `fraction`, drawn
  from `seed`), because a pedestrian's overlapping windows are near-copies of each other: a
  validation set that shared pedestrians with training would flatter the model.
  """
  unique, inverse = np.unique(pedestrian_keys(recordings, ped_ids), return_inverse=True)
  held = np.random.default_rng([seed, 2]).random(len(unique)) < fraction
  return held[inverse]


def run_split(
  builder: tfds.core.DatasetBuilder,
  split: str,
  data: ml_collections.ConfigDict,
  in_memory: bool | None = None,
  features: tuple[str, ...] = MODEL_FEATURES,
):
  """The examples a run trains on, evaluates or embeds.

  'test' is the protocol's test split. With data.validation_fraction > 0, 'train' is the
  training split less a random fraction of its pedestrians and 'validation' is those
  pedestrians' examples, so that choices can be made without the test split (PROTOCOL.md
  section 5). With 0, 'train' is the whole training split. `in_memory` (default
  data.in_memory) holds the split in host memory or streams it.
  """
  in_memory = data.in_memory if in_memory is None else in_memory
  if split == 'test' or (split == 'train' and data.validation_fraction == 0):
    return load_split(builder, split, in_memory, features)
  if split not in ('train', 'validation'):
    raise ValueError(f"split must be 'train', 'validation' or 'test', got {split!r}")
  if data.validation_fraction == 0:
    raise ValueError('the validation split needs config.data.validation_fraction > 0')
  source = load_split(builder, 'train', in_memory, features)
  meta = load_split(builder, 'train', in_memory, features=('source', 'ped_id'))
  ids = meta.get_batch(np.arange(len(meta)))
  held = held_out_pedestrians(ids['source'], ids['ped_id'], data.validation_fraction, data.seed)
  return SubsetSource(source, np.flatnonzero(held if split == 'validation' else ~held))


@functools.lru_cache(maxsize=2)
def _epoch_permutation(seed: int, epoch: int, size: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(size)


def train_batch_indices(
  step: int, size: int, global_batch: int, seed: int, process_index: int, process_count: int
) -> np.ndarray:
  """Indices of this process's slice of the global batch at `step`.

  Each epoch is a fresh permutation of the split from (seed, epoch); the remainder of an epoch
  that does not fill a batch is dropped.
  """
  steps_per_epoch = size // global_batch
  epoch, b = divmod(step, steps_per_epoch)
  batch = _epoch_permutation(seed, epoch, size)[b * global_batch : (b + 1) * global_batch]
  local = global_batch // process_count
  return batch[process_index * local : (process_index + 1) * local]


def train_batches(
  source: Source,
  global_batch: int,
  seed: int,
  start_step: int,
  num_steps: int,
  process_index: int = 0,
  process_count: int = 1,
  num_threads: int = 4,
) -> Iterator[dict[str, np.ndarray]]:
  """This process's slices of the global training batches for steps [start_step, num_steps)."""
  if global_batch > len(source):
    raise ValueError(f'batch size {global_batch} is larger than the split ({len(source)} pairs)')
  if global_batch % process_count:
    raise ValueError(f'batch size {global_batch} does not divide over {process_count} processes')
  indices = functools.partial(
    train_batch_indices,
    size=len(source),
    global_batch=global_batch,
    seed=seed,
    process_index=process_index,
    process_count=process_count,
  )
  ds = grain.MapDataset.range(start_step, num_steps).map(lambda s: source.get_batch(indices(s)))
  return iter(
    ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=8))
  )
