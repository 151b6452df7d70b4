"""Tests for trajcross_jax.data.synthetic: the pedestrian simulator."""

import numpy as np
import pytest

from trajcross_jax.data import synthetic, windows


@pytest.fixture(scope='module')
def simulated():
  return synthetic.simulate_tracks(seed=0, num_tracks=300)


def speeds(track) -> np.ndarray:
  return np.linalg.norm(np.diff(track.xy, axis=0), axis=-1) / synthetic.DT


def test_deterministic_in_seed(simulated):
  again = synthetic.simulate_tracks(seed=0, num_tracks=300)
  other = synthetic.simulate_tracks(seed=1, num_tracks=300)
  for a, b in zip(simulated, again, strict=True):
    np.testing.assert_array_equal(a.xy, b.xy)
    np.testing.assert_array_equal(a.frames, b.frames)
  assert not np.array_equal(simulated[0].xy[:12], other[0].xy[:12])


def test_tracks_look_like_univ_rows(simulated):
  assert [t.ped_id for t in simulated] == list(range(1, 301))
  assert {t.source for t in simulated} == {'synthetic'}
  for track in simulated:
    assert track.frames.dtype == np.int64 and track.xy.shape == (len(track), 2)
    assert np.all(np.diff(track.frames) == synthetic.FRAME_STEP)
  lengths = np.array([len(t) for t in simulated])
  assert lengths.min() >= synthetic.MIN_LENGTH
  assert np.mean(lengths >= 20) > 0.7  # Most tracks give windows...
  assert lengths.std() > 10  # ...of varied number.


def test_walkers_stay_in_the_plaza(simulated):
  points = np.concatenate([t.xy for t in simulated])
  margin = 0.15  # Tracking noise can put a point just past a wall.
  assert np.all(points >= -margin) and np.all(points <= np.array([16.0, 14.0]) + margin)
  # And they use the whole plaza, not one corner of it.
  assert np.all(points.min(axis=0) < 1) and np.all(points.max(axis=0) > [15, 13])


def test_walking_speeds_stops_and_turns(simulated):
  steps = np.concatenate([speeds(t) for t in simulated])
  walking = steps[steps > 0.3]
  assert 1.1 < np.median(walking) < 1.5  # About 1.3 m/s...
  per_walker = np.array([np.median(speeds(t)) for t in simulated])
  assert per_walker.std() > 0.1  # ...with a spread across pedestrians...
  assert 0.01 < np.mean(steps < 0.2) < 0.3  # ...some standing still...
  turns = np.concatenate([walking_turns(t) for t in simulated])  # ...and turning now and then.
  assert np.median(turns) < 0.2 and np.mean(turns > np.pi / 6) > 0.01


def walking_turns(track) -> np.ndarray:
  """Heading changes (radians) between consecutive steps that both move."""
  steps = np.diff(track.xy, axis=0)
  heading = np.arctan2(steps[:, 1], steps[:, 0])
  moving = speeds(track) > 0.3
  both = moving[1:] & moving[:-1]
  return np.abs(np.angle(np.exp(1j * np.diff(heading))))[both]


def test_the_source_can_be_named_and_there_are_enough_windows():
  tracks = synthetic.simulate_tracks(seed=3, num_tracks=500, source='synthetic_train')
  assert tracks[0].source == 'synthetic_train'
  # The builder's default: 500 pedestrians give more than the 10,000 training windows.
  assert len(windows.make_windows(tracks)) > 10_000


def test_bad_arguments():
  with pytest.raises(ValueError, match='mean_length'):
    synthetic.simulate_tracks(seed=0, num_tracks=3, mean_length=5)
  assert synthetic.simulate_tracks(seed=0, num_tracks=0) == []
