"""Gap-free pedestrian tracks, and the `frame ped x y` files of PROTOCOL.md section 1.

A track is the rows of one (file, ped_id), sorted by frame. A file's usual frame step is the most
common frame difference between consecutive rows of a track (10 frames = 0.4 s for univ). A step
other than the usual one is a gap in the recording: the track is split there into pieces that
keep the ped_id, so a window of consecutive points (windows.py) never spans a gap. The univ files
have no gaps; the rule matters for other recordings and for hand-made test files.
"""

import collections
import dataclasses

import numpy as np
from etils import epath

from trajcross_jax.data import readers
from trajcross_jax.data.readers import TrackFileError  # noqa: F401  Raised by read_tracks.


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value.
class Track:
  """One pedestrian's gap-free run of points in one recording.

  Attributes:
    source: the recording's file stem, e.g. 'students001'.
    ped_id: the pedestrian id, unique within `source` (not across files).
    frames: int64 (n,), strictly increasing by the file's usual step.
    xy: float64 (n, 2), world coordinates in metres.
  """

  source: str
  ped_id: int
  frames: np.ndarray
  xy: np.ndarray

  def __len__(self) -> int:
    return len(self.frames)


def read_tracks(path: epath.PathLike, source: str | None = None) -> list[Track]:
  """Reads one `frame ped x y` file (tab- or space-separated) into gap-free tracks.

  Args:
    path: the file.
    source: the recording's name for every track; defaults to the file's stem. (A downloaded
      copy has a mangled file name but is still, say, 'students001'.)

  Returns:
    The file's tracks, ordered by ped_id and then first frame. A pedestrian whose frames have a
    gap gives one track per gap-free piece.

  Raises:
    TrackFileError: the file is missing or has no rows, or a row has the wrong number of columns,
      a non-number, a NaN or infinity, a non-integer frame or ped id, or repeats a (frame, ped).
  """
  raws = readers.read_text(path, source=source)
  step = usual_frame_step(np.concatenate([np.diff(raw.times) for raw in raws]).astype(np.int64))
  return [
    piece
    for raw in raws
    for piece in split_at_frame_gaps(
      raw.source, int(raw.track_id), raw.times.astype(np.int64), raw.coords, step
    )
  ]


def split_at_frame_gaps(
  source: str, ped_id: int, frames: np.ndarray, xy: np.ndarray, step: int | None
) -> list[Track]:
  """One pedestrian's points (sorted by frame) as gap-free tracks: cut where the step != `step`."""
  starts = np.flatnonzero(np.diff(frames) != step) + 1
  bounds = np.concatenate([[0], starts, [len(frames)]])
  return [
    Track(source=source, ped_id=ped_id, frames=frames[a:b], xy=xy[a:b])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True)
  ]


def usual_frame_step(steps: np.ndarray) -> int | None:
  """The most common positive frame step (the smallest on a tie); None if there is none."""
  counts = collections.Counter(int(s) for s in steps if s > 0)
  if not counts:
    return None
  return min(counts, key=lambda s: (-counts[s], s))
