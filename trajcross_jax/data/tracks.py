"""Reading pedestrian tracks from `frame ped x y` text files (PROTOCOL.md section 1).

A track is the rows of one (file, ped_id), sorted by frame. A file's usual frame step is the most
common frame difference between consecutive rows of a track (10 frames = 0.4 s for univ). A step
other than the usual one is a gap in the recording: the track is split there into pieces that
keep the ped_id, so a window of consecutive points (windows.py) never spans a gap. The univ files
have no gaps; the rule matters for other recordings and for hand-made test files.
"""

import collections
import dataclasses
import math

import numpy as np
from etils import epath

_COLUMNS = 4  # frame, ped, x, y


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


class TrackFileError(ValueError):
  """A track file is missing, empty or malformed; the message names the file and line."""


def read_tracks(path: epath.PathLike, source: str | None = None) -> list[Track]:
  """Reads one `frame ped x y` file (tab- or space-separated) into tracks.

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
  path = epath.Path(path)
  try:
    text = path.read_text()
  except FileNotFoundError as e:
    raise TrackFileError(f'{path}: no such track file') from e
  except (OSError, UnicodeDecodeError) as e:
    raise TrackFileError(f'{path}: cannot read the track file: {e}') from e
  line_numbers, rows = _parse_rows(path, text)
  frames, peds = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)

  # Sort by (ped, frame), keeping file order among equal keys so duplicates report in order.
  order = np.lexsort((frames, peds))
  frames, peds, xy, line_numbers = frames[order], peds[order], rows[order, 2:], line_numbers[order]
  same_ped = peds[1:] == peds[:-1]
  steps = np.diff(frames)
  duplicates = np.flatnonzero(same_ped & (steps == 0))
  if duplicates.size:
    i = duplicates[0]
    raise TrackFileError(
      f'{path}:{line_numbers[i + 1]}: duplicate row for frame {frames[i]}, ped {peds[i]} '
      f'(first at line {line_numbers[i]})'
    )

  step = usual_frame_step(steps[same_ped])
  starts = np.flatnonzero(~same_ped | (steps != step)) + 1
  bounds = np.concatenate([[0], starts, [len(frames)]])
  return [
    Track(source=source or path.stem, ped_id=int(peds[a]), frames=frames[a:b], xy=xy[a:b])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True)
  ]


def usual_frame_step(steps: np.ndarray) -> int | None:
  """The most common positive frame step (the smallest on a tie); None if there is none."""
  counts = collections.Counter(int(s) for s in steps if s > 0)
  if not counts:
    return None
  return min(counts, key=lambda s: (-counts[s], s))


def _parse_rows(path: epath.Path, text: str) -> tuple[np.ndarray, np.ndarray]:
  """Parses the non-blank lines into (1-based line numbers (n,), float64 rows (n, 4))."""
  line_numbers, rows = [], []
  for line_number, line in enumerate(text.splitlines(), start=1):
    fields = line.split()
    if not fields:
      continue
    if len(fields) != _COLUMNS:
      raise TrackFileError(
        f'{path}:{line_number}: expected {_COLUMNS} columns (frame ped x y), got {len(fields)}'
      )
    row = []
    for name, field in zip(('frame', 'ped', 'x', 'y'), fields, strict=True):
      try:
        value = float(field)
      except ValueError:
        raise TrackFileError(f'{path}:{line_number}: {name} {field!r} is not a number') from None
      if not math.isfinite(value):
        raise TrackFileError(f'{path}:{line_number}: {name} is {field!r}, not a finite number')
      if name in ('frame', 'ped') and value != int(value):
        raise TrackFileError(f'{path}:{line_number}: {name} {field!r} is not an integer')
      row.append(value)
    line_numbers.append(line_number)
    rows.append(row)
  if not rows:
    raise TrackFileError(f'{path}: the file has no rows')
  return np.asarray(line_numbers), np.asarray(rows, dtype=np.float64)
