"""Tests for trajcross_jax.data.resample: fixed time step and fixed arc-length spacing."""

import numpy as np
import pytest

from trajcross_jax.data import resample

SPEED = 1.3  # m/s
DIRECTION = np.array([0.6, -0.8])  # A unit vector.
START = np.array([12.5, -3.25])


def true_position(t: np.ndarray) -> np.ndarray:
  """(n, 2) where a walker at constant speed along DIRECTION is at times t."""
  return START + SPEED * np.asarray(t)[:, None] * DIRECTION


def irregular_times(n: int, seed: int = 0, t0: float = 100.0) -> np.ndarray:
  return t0 + np.cumsum(np.random.default_rng(seed).uniform(0.05, 0.9, n))


# split_at_gaps


def test_split_at_gaps():
  times = np.array([0.0, 0.4, 0.8, 2.0, 2.4, 5.0, 5.5, 7.0])
  # 5.0 -> 5.5 equals max_gap, so it is not a gap; 7.0 is a piece of its own.
  pieces = resample.split_at_gaps(times, max_gap=0.5)
  assert pieces == [slice(0, 3), slice(3, 5), slice(5, 7), slice(7, 8)]
  assert resample.split_at_gaps(times, max_gap=1.5) == [slice(0, 5), slice(5, 8)]
  assert resample.split_at_gaps(times, max_gap=10.0) == [slice(0, 8)]
  assert resample.split_at_gaps(np.array([3.0]), max_gap=1.0) == [slice(0, 1)]


# by_time


def test_by_time_is_exact_on_constant_speed_track():
  times = irregular_times(60)
  (piece,) = resample.by_time(times, true_position(times), step=0.4, max_gap=1.0)
  new_times, new_xy = piece
  expected_times = times[0] + 0.4 * np.arange(len(new_times))
  np.testing.assert_allclose(new_times, expected_times, rtol=0, atol=1e-9)
  assert new_times[-1] <= times[-1] < new_times[-1] + 0.4
  assert new_xy.shape == (len(new_times), 2)
  np.testing.assert_allclose(new_xy, true_position(new_times), rtol=0, atol=1e-9)
  # The samples are equally spaced in space too: speed * step apart.
  np.testing.assert_allclose(np.linalg.norm(np.diff(new_xy, axis=0), axis=-1), SPEED * 0.4)


def test_by_time_interpolates_linearly_between_samples():
  times = np.array([0.0, 1.0, 3.0])
  xy = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 4.0]])
  ((new_times, new_xy),) = resample.by_time(times, xy, step=0.5, max_gap=5.0)
  np.testing.assert_allclose(new_times, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
  np.testing.assert_allclose(
    new_xy, [[0, 0], [1, 0], [2, 0], [2, 1], [2, 2], [2, 3], [2, 4]], rtol=0, atol=1e-12
  )


def test_by_time_keeps_last_sample_despite_rounding():
  # 0.1 * 3 is 0.30000000000000004 in floating point, just past the last time.
  times = np.array([0.0, 0.3])
  xy = np.array([[0.0, 0.0], [3.0, 0.0]])
  ((new_times, new_xy),) = resample.by_time(times, xy, step=0.1, max_gap=1.0)
  assert len(new_times) == 4
  np.testing.assert_allclose(new_xy[:, 0], [0, 1, 2, 3], atol=1e-12)
  ((new_times, _),) = resample.by_time(times, xy, step=0.1000001, max_gap=1.0)
  assert len(new_times) == 3


def test_by_time_splits_at_gaps_and_keeps_every_piece():
  times = np.concatenate([irregular_times(20, 1, 0.0), [30.0], irregular_times(15, 2, 50.0)])
  pieces = resample.by_time(times, true_position(times), step=0.25, max_gap=1.0)
  assert len(pieces) == 3
  bounds = [(0, 20), (20, 21), (21, 36)]
  for (new_times, new_xy), (a, b) in zip(pieces, bounds, strict=True):
    assert new_times[0] == times[a]
    assert new_times[-1] <= times[b - 1] < new_times[-1] + 0.25
    np.testing.assert_allclose(np.diff(new_times), 0.25, atol=1e-9)
    # No sample lies in a gap, and positions within a piece are still exact.
    np.testing.assert_allclose(new_xy, true_position(new_times), rtol=0, atol=1e-9)
  # The one-point piece is kept as one sample.
  np.testing.assert_array_equal(pieces[1][0], [30.0])
  np.testing.assert_allclose(pieces[1][1], true_position(np.array([30.0])))


def test_by_time_does_not_bridge_a_gap():
  times = np.array([0.0, 1.0, 10.0, 11.0])
  xy = np.array([[0.0, 0.0], [1.0, 0.0], [100.0, 0.0], [101.0, 0.0]])
  pieces = resample.by_time(times, xy, step=0.5, max_gap=2.0)
  assert [p[0].tolist() for p in pieces] == [[0.0, 0.5, 1.0], [10.0, 10.5, 11.0]]
  assert pieces[1][1][:, 0].tolist() == [100.0, 100.5, 101.0]


# by_distance


def test_by_distance_constant_speed_track():
  times = irregular_times(40)
  xy = true_position(times)
  total = np.linalg.norm(xy[-1] - xy[0])
  points = resample.by_distance(xy, spacing=0.75)
  assert len(points) == int(total // 0.75) + 1
  np.testing.assert_allclose(np.linalg.norm(np.diff(points, axis=0), axis=-1), 0.75, rtol=1e-12)
  expected = xy[0] + 0.75 * np.arange(len(points))[:, None] * DIRECTION
  np.testing.assert_allclose(points, expected, rtol=0, atol=1e-9)


def test_by_distance_turns_the_corner():
  path = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]])
  np.testing.assert_allclose(
    resample.by_distance(path, 1.0),
    [[0, 0], [1, 0], [2, 0], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]],
    atol=1e-12,
  )
  # 2.5 m steps: the second point is 0.5 m short of the corner, the third 2 m past it (along the
  # path, not cutting across).
  np.testing.assert_allclose(
    resample.by_distance(path, 2.5), [[0, 0], [2.5, 0], [3, 2]], atol=1e-12
  )


def test_by_distance_repeated_points():
  path = np.array([[0.0, 0.0], [0.0, 0.0], [2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [2.0, 2.0]])
  with np.errstate(all='raise'):  # A 0 / 0 anywhere would raise here.
    points = resample.by_distance(path, 1.0)
  np.testing.assert_allclose(points, [[0, 0], [1, 0], [2, 0], [2, 1], [2, 2]], atol=1e-12)


@pytest.mark.parametrize('path', [[[4.0, 5.0]], [[4.0, 5.0], [4.0, 5.0], [4.0, 5.0]]])
def test_by_distance_zero_length(path):
  with np.errstate(all='raise'):
    points = resample.by_distance(np.array(path), 1.0)
  np.testing.assert_array_equal(points, [[4.0, 5.0]])


def test_by_distance_shorter_than_spacing():
  np.testing.assert_array_equal(
    resample.by_distance(np.array([[0.0, 0.0], [0.5, 0]]), 1.0), [[0, 0]]
  )


# errors

GOOD_TIMES = np.array([0.0, 1.0, 2.0])
GOOD_XY = np.zeros((3, 2))


@pytest.mark.parametrize(
  'times, match',
  [
    (np.array([0.0, 1.0, 1.0]), r'strictly increasing, but times\[1\] = 1.0 and times\[2\] = 1.0'),
    (np.array([0.0, 2.0, 1.0]), 'strictly increasing'),
    (np.array([0.0, np.nan, 2.0]), 'NaN or infinity'),
    (np.array([0.0, 1.0, np.inf]), 'NaN or infinity'),
    (np.zeros((3, 1)), r'shape \(n,\)'),
    (np.zeros(0), r'shape \(n,\) with n >= 1'),
  ],
)
def test_bad_times(times, match):
  with pytest.raises(ValueError, match=match):
    resample.split_at_gaps(times, 1.0)
  with pytest.raises(ValueError, match=match):
    resample.by_time(times, np.zeros((len(times), 2)), 0.5, 1.0)


@pytest.mark.parametrize(
  'xy, match',
  [
    (np.zeros((2, 2)), 'xy has 2 points but times has 3'),
    (np.zeros((3, 3)), r'shape \(n, 2\)'),
    (np.zeros(3), r'shape \(n, 2\)'),
    (np.array([[0.0, 0.0], [np.nan, 1.0], [2.0, 2.0]]), 'NaN or infinity'),
  ],
)
def test_by_time_bad_xy(xy, match):
  with pytest.raises(ValueError, match=match):
    resample.by_time(GOOD_TIMES, xy, 0.5, 1.0)


@pytest.mark.parametrize(
  'xy, match',
  [
    (np.zeros((0, 2)), r'shape \(n, 2\) with n >= 1'),
    (np.zeros((3, 3)), r'shape \(n, 2\)'),
    (np.array([[0.0, 0.0], [np.inf, 1.0]]), 'NaN or infinity'),
  ],
)
def test_by_distance_bad_xy(xy, match):
  with pytest.raises(ValueError, match=match):
    resample.by_distance(xy, 1.0)


@pytest.mark.parametrize('value', [0.0, -1.0, np.nan, np.inf, None, 'x'])
def test_bad_step_spacing_max_gap(value):
  with pytest.raises(ValueError, match=f'max_gap must be a finite number > 0, got {value!r}'):
    resample.split_at_gaps(GOOD_TIMES, value)
  with pytest.raises(ValueError, match='step must be a finite number > 0'):
    resample.by_time(GOOD_TIMES, GOOD_XY, value, 1.0)
  with pytest.raises(ValueError, match='max_gap must be a finite number > 0'):
    resample.by_time(GOOD_TIMES, GOOD_XY, 0.5, value)
  with pytest.raises(ValueError, match='spacing must be a finite number > 0'):
    resample.by_distance(GOOD_XY, value)
