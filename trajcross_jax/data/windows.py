"""Trajectories as windows of consecutive track points, and the split (PROTOCOL.md sections 2-3).

A pool lists every window of some recordings in canonical order: files in the order named, then
ped_id ascending, then first frame ascending. A split is a seeded draw from its pool, so the same
seed gives the same examples on any machine.
"""

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
from etils import epath

from trajcross_jax.data import tracks as tracks_lib

# PROTOCOL.md section 4: a recording's code in the per-example image draws.
FILE_CODES = {'students001': 0, 'students003': 1, 'uni_examples': 2}
# PROTOCOL.md section 3: recording-disjoint pools.
TRAIN_FILES = ('students003', 'uni_examples')
TEST_FILES = ('students001',)
# PROTOCOL.md section 3: the second entropy word of each split's draw.
SPLIT_INDEX = {'train': 0, 'test': 1}


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value.
class Windows:
  """N trajectories of M points, with where each came from.

  Attributes:
    xy: float64 (N, M, 2), the raw points in metres.
    source: str (N,), the recording (file stem).
    ped_id: int64 (N,), the pedestrian id within `source`.
    start_frame: int64 (N,), the frame of the first point.
  """

  xy: np.ndarray
  source: np.ndarray
  ped_id: np.ndarray
  start_frame: np.ndarray

  def __len__(self) -> int:
    return len(self.xy)

  def take(self, indices: np.ndarray | Sequence[int]) -> 'Windows':
    """The windows at `indices`, in that order."""
    indices = np.asarray(indices, dtype=np.int64)
    return Windows(
      xy=self.xy[indices],
      source=self.source[indices],
      ped_id=self.ped_id[indices],
      start_frame=self.start_frame[indices],
    )


def make_windows(tracks: Sequence[tracks_lib.Track], length: int = 20, stride: int = 1) -> Windows:
  """Every window of `length` consecutive points of each track, tracks in the order given.

  A track of n >= length points gives 1 + (n - length) // stride windows, starting at its points
  0, stride, 2 * stride, ...; a shorter track gives none.
  """
  if length < 2 or stride < 1:
    raise ValueError(f'need length >= 2 and stride >= 1, got length={length}, stride={stride}')
  # Start each list with an empty array so that no tracks (or only short ones) give an empty pool.
  xy, source = [np.zeros((0, length, 2))], [np.zeros(0, dtype=str)]
  ped_id, start_frame = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
  for track in tracks:
    starts = np.arange(0, len(track) - length + 1, stride)
    xy.append(track.xy[starts[:, None] + np.arange(length)])
    source.append(np.full(len(starts), track.source))
    ped_id.append(np.full(len(starts), track.ped_id, dtype=np.int64))
    start_frame.append(track.frames[starts])
  return Windows(
    xy=np.concatenate(xy, dtype=np.float64),
    source=np.concatenate(source),
    ped_id=np.concatenate(ped_id),
    start_frame=np.concatenate(start_frame).astype(np.int64),
  )


def read_pool(files: Mapping[str, epath.PathLike], length: int = 20, stride: int = 1) -> Windows:
  """The pool of the recordings `files` ({name: path}, in canonical order: files as given)."""
  tracks = [
    track for name, path in files.items() for track in tracks_lib.read_tracks(path, source=name)
  ]
  return make_windows(tracks, length=length, stride=stride)


def draw(pool: Windows, size: int, seed: int, split_index: int) -> Windows:
  """`size` windows of `pool` drawn without replacement, kept in canonical order.

  Exactly PROTOCOL.md section 3:
  `sorted(numpy.random.default_rng([seed, split_index]).choice(len(pool), size, replace=False))`,
  with split_index 0 for train and 1 for test (SPLIT_INDEX).
  """
  if not 0 <= size <= len(pool):
    raise ValueError(f'cannot draw {size} windows from a pool of {len(pool)}')
  rng = np.random.default_rng([seed, split_index])
  return pool.take(np.sort(rng.choice(len(pool), size, replace=False)))
