"""Resampling a track to a fixed time step or a fixed arc-length spacing.

Recordings with irregular timestamps (GPS, hand annotation) are brought to the fixed step that
windows assume. Positions between two recorded points are linear in time (by_time) or in arc
length (by_distance); a gap longer than max_gap is not bridged: the track is split there, as
tracks.py splits at a frame gap.
"""

import math

import numpy as np

# A sample that lands this fraction of a step past the end still counts, so that float rounding
# in `t_first + k * step` or in summed segment lengths does not drop the last sample.
_END_TOLERANCE = 1e-9


def split_at_gaps(times: np.ndarray, max_gap: float) -> list[slice]:
  """The pieces of a track between gaps.

  Args:
    times: (n,) strictly increasing, finite, n >= 1.
    max_gap: the largest step between consecutive times within a piece; > 0 and finite.

  Returns:
    Slices into `times`, in order, covering every index once; consecutive times within a piece
    differ by at most max_gap.

  Raises:
    ValueError: a bad shape, a NaN or infinity, times not strictly increasing, or a bad max_gap.
  """
  times = _check_times(times)
  _check_positive('max_gap', max_gap)
  starts = np.flatnonzero(np.diff(times) > max_gap) + 1
  bounds = [0, *starts.tolist(), len(times)]
  return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def by_time(
  times: np.ndarray, xy: np.ndarray, step: float, max_gap: float
) -> list[tuple[np.ndarray, np.ndarray]]:
  """Resamples a track at a fixed time step, piece by piece.

  Args:
    times: (n,) strictly increasing, finite, n >= 1.
    xy: (n, 2) finite positions at `times`.
    step: the new time step; > 0 and finite.
    max_gap: the track is split where consecutive times differ by more than this; > 0, finite.

  Returns:
    One (times (m,), xy (m, 2)) pair per piece of split_at_gaps, in order. A piece's samples are
    at t_first + k * step for k = 0, 1, ... while within t_last (plus 1e-9 of a step), with
    positions linear in time between the recorded points. Every piece is kept, even one of a
    single sample; the caller drops pieces too short for its use.

  Raises:
    ValueError: a bad shape, a NaN or infinity, times not strictly increasing, or a bad step or
      max_gap.
  """
  times = _check_times(times)
  xy = _check_xy(xy, len(times))
  _check_positive('step', step)
  pieces = []
  for piece in split_at_gaps(times, max_gap):
    t, p = times[piece], xy[piece]
    # k * step from the first time, not a running sum, so rounding does not accumulate.
    count = math.floor((t[-1] - t[0]) / step + _END_TOLERANCE) + 1
    new_times = t[0] + np.arange(count) * step
    # np.interp clamps a last sample just past t_last (the tolerance) to the last position.
    new_xy = np.stack([np.interp(new_times, t, p[:, axis]) for axis in range(2)], axis=-1)
    pieces.append((new_times, new_xy))
  return pieces


def by_distance(xy: np.ndarray, spacing: float) -> np.ndarray:
  """Points at equal arc-length spacing along a polyline.

  Args:
    xy: (n, 2) finite vertices, n >= 1; repeated points are allowed.
    spacing: the arc length between consecutive output points; > 0 and finite.

  Returns:
    (m, 2) the points at arc lengths 0, spacing, 2 * spacing, ... up to the polyline's length
    (plus 1e-9 of a spacing), linear between vertices. The first point is xy[0]; a polyline of
    length 0 gives just that point.

  Raises:
    ValueError: a bad shape, no points, a NaN or infinity, or a bad spacing.
  """
  xy = _check_xy(xy, None)
  _check_positive('spacing', spacing)
  arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=-1))])
  # Drop vertices that add no arc length (repeated points, or a step too small to change the
  # running sum): their interval's slope in np.interp is 0 / 0. numpy happens never to use such a
  # slope, but strictly increasing arc lengths do not rely on that.
  keep = np.concatenate([[True], np.diff(arc) > 0])
  arc, xy = arc[keep], xy[keep]
  count = math.floor(arc[-1] / spacing + _END_TOLERANCE) + 1
  targets = np.arange(count) * spacing
  return np.stack([np.interp(targets, arc, xy[:, axis]) for axis in range(2)], axis=-1)


def _check_times(times: np.ndarray) -> np.ndarray:
  """`times` as float64 (n,), n >= 1, finite and strictly increasing; ValueError otherwise."""
  times = np.asarray(times, dtype=np.float64)
  if times.ndim != 1 or not len(times):
    raise ValueError(f'times must have shape (n,) with n >= 1, got {times.shape}')
  if not np.isfinite(times).all():
    raise ValueError('times contains NaN or infinity; drop or fix those samples first')
  steps = np.diff(times)
  if (steps <= 0).any():
    i = int(np.flatnonzero(steps <= 0)[0])
    raise ValueError(
      f'times must be strictly increasing, but times[{i}] = {times[i]} and '
      f'times[{i + 1}] = {times[i + 1]}; sort the samples and drop duplicate times'
    )
  return times


def _check_xy(xy: np.ndarray, n: int | None) -> np.ndarray:
  """`xy` as float64 (n, 2) (any n >= 1 if n is None), all finite; ValueError otherwise."""
  xy = np.asarray(xy, dtype=np.float64)
  if xy.ndim != 2 or xy.shape[1] != 2 or not len(xy):
    raise ValueError(f'xy must have shape (n, 2) with n >= 1, got {xy.shape}')
  if n is not None and len(xy) != n:
    raise ValueError(f'xy has {len(xy)} points but times has {n}; they must match')
  if not np.isfinite(xy).all():
    raise ValueError('xy contains NaN or infinity; drop or fix those points first')
  return xy


def _check_positive(name: str, value: float) -> None:
  """ValueError unless `value` is a finite number > 0."""
  try:
    ok = math.isfinite(value) and value > 0
  except TypeError:
    ok = False
  if not ok:
    raise ValueError(f'{name} must be a finite number > 0, got {value!r}')
