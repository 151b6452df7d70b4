"""From the tfds data source to training and evaluation batches.

A split is read either into host memory (small splits: the paper's 10,000 pairs are 42 MB) or
streamed from its array_record files; both go through the same grain pipeline, which maps a
global step to the indices of its batch. The order is therefore a pure function of
(seed, step): resuming at step s gives exactly the batches an uninterrupted run would.
"""

import threading
from collections.abc import Iterator
from typing import Protocol

import grain
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from trajcross_jax.data import builder as builder_lib

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
  return builder_lib.make_builder(
    data.name,
    data.data_dir,
    seed=data.seed,
    window_length=data.window_length,
    stride=data.stride,
    train_size=data.train_size,
    test_size=data.test_size,
  )


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


def nearest_neighbours(trajectories: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
  """The k nearest other trajectories of each, nearest first: (N, k) indices.

  Distance: root-mean-square point-wise distance, |a - b| / sqrt(M) over the flattened points,
  which reduces to one matmul per chunk of rows (the protocol's mean point-wise distance does
  not, and ranks neighbours almost the same way).
  """
  n = len(trajectories)
  if not 0 < k < n:
    raise ValueError(f'k must be in [1, {n - 1}] for {n} trajectories, got {k}')
  flat = np.asarray(trajectories, np.float64).reshape(n, -1)
  sq = (flat * flat).sum(axis=1)
  out = np.empty((n, k), np.int64)
  for start in range(0, n, chunk):
    stop = min(start + chunk, n)
    d2 = sq[start:stop, None] + sq[None] - 2 * flat[start:stop] @ flat.T
    d2[np.arange(stop - start), np.arange(start, stop)] = np.inf  # Not itself.
    part = np.argpartition(d2, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(d2, part, axis=1), axis=1, kind='stable')
    out[start:stop] = np.take_along_axis(part, order, axis=1)
  return out


def neighbour_groups(rng: np.random.Generator, neighbours: np.ndarray) -> np.ndarray:
  """A permutation of the split in which each example is followed by its nearest neighbours.

  Examples are visited in random order; each one not yet placed opens a group and pulls in its
  neighbours (nearest first) that are not yet placed, up to 1 + neighbours.shape[1] examples.
  Every example appears exactly once, so a batch never holds one pair twice.
  """
  n, k = neighbours.shape
  placed = np.zeros(n, bool)
  order = []
  for a in rng.permutation(n):
    if placed[a]:
      continue
    group = [a] + [b for b in neighbours[a] if not placed[b]][:k]
    placed[group] = True
    order.extend(group)
  return np.asarray(order, np.int64)


class BatchOrder:
  """Which examples make up the global batch of each step: a pure function of (seed, step).

  Each epoch is a fresh order of the split drawn from (seed, epoch): a uniform permutation, or,
  with `neighbours` (nearest_neighbours of the split), groups of each example with its nearest
  neighbours laid side by side, so that a batch holds the hard negatives that random batches
  almost never do. The remainder of an epoch that does not fill a batch is dropped.
  """

  def __init__(self, size: int, global_batch: int, seed: int, neighbours: np.ndarray | None = None):
    if global_batch > size:
      raise ValueError(f'batch size {global_batch} is larger than the split ({size} pairs)')
    if neighbours is not None and len(neighbours) != size:
      raise ValueError(f'neighbours cover {len(neighbours)} examples, the split has {size}')
    self.size, self.global_batch, self.seed = size, global_batch, seed
    self.neighbours = neighbours
    self.steps_per_epoch = size // global_batch
    # Batches of one epoch reuse its order; grain's read threads ask for it concurrently.
    self._last: tuple[int, np.ndarray] | None = None
    self._lock = threading.Lock()

  def epoch(self, epoch: int) -> np.ndarray:
    """The order of the whole split in `epoch`."""
    with self._lock:
      if self._last is None or self._last[0] != epoch:
        rng = np.random.default_rng([self.seed, epoch])
        if self.neighbours is None:
          order = rng.permutation(self.size)
        else:
          order = neighbour_groups(rng, self.neighbours)
        self._last = (epoch, order)
      return self._last[1]

  def indices(self, step: int, process_index: int = 0, process_count: int = 1) -> np.ndarray:
    """Indices of this process's contiguous slice of the global batch at `step`."""
    epoch, b = divmod(step, self.steps_per_epoch)
    batch = self.epoch(epoch)[b * self.global_batch : (b + 1) * self.global_batch]
    local = self.global_batch // process_count
    return batch[process_index * local : (process_index + 1) * local]


def train_batches(
  source: Source,
  order: BatchOrder,
  start_step: int,
  num_steps: int,
  process_index: int = 0,
  process_count: int = 1,
  num_threads: int = 4,
) -> Iterator[dict[str, np.ndarray]]:
  """This process's slices of the global training batches for steps [start_step, num_steps)."""
  if order.size != len(source):
    raise ValueError(f'the batch order covers {order.size} examples, the split has {len(source)}')
  if order.global_batch % process_count:
    raise ValueError(
      f'batch size {order.global_batch} does not divide over {process_count} processes'
    )
  ds = grain.MapDataset.range(start_step, num_steps).map(
    lambda s: source.get_batch(order.indices(s, process_index, process_count))
  )
  return iter(
    ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=8))
  )


def eval_batches(
  source: Source, global_batch: int, process_index: int = 0, process_count: int = 1
) -> Iterator[dict[str, np.ndarray]]:
  """Every example exactly once, in order, in global batches padded at the end.

  Each batch has a 'mask' (1 for real examples, 0 for padding); this process gets its
  contiguous slice of each global batch.
  """
  if global_batch % process_count:
    raise ValueError(f'eval batch {global_batch} does not divide over {process_count} processes')
  local = global_batch // process_count
  for start in range(0, len(source), global_batch):
    idx = np.arange(start, start + global_batch)[
      process_index * local : (process_index + 1) * local
    ]
    mask = idx < len(source)
    batch = source.get_batch(np.where(mask, idx, 0))
    batch['mask'] = mask.astype(np.float32)
    yield batch
