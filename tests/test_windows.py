"""Tests for trajcross_jax.data.windows: windows, pools and the split draw."""

import os
import pathlib

import numpy as np
import pytest

from trajcross_jax.data import tracks, windows


def univ_dir() -> pathlib.Path:
  """The real univ files: $TRAJCROSS_UNIV_DIR, else <repo>/../shared/data/univ."""
  default = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'univ'
  return pathlib.Path(os.environ.get('TRAJCROSS_UNIV_DIR', default))


def univ_files(names) -> dict[str, pathlib.Path]:
  return {name: univ_dir() / f'{name}.txt' for name in names}


@pytest.fixture(scope='module')
def pools() -> dict[str, windows.Windows]:
  return {
    'train': windows.read_pool(univ_files(windows.TRAIN_FILES)),
    'test': windows.read_pool(univ_files(windows.TEST_FILES)),
  }


def make_track(ped_id: int, n: int, first_frame: int = 0, source: str = 'rec') -> tracks.Track:
  frames = first_frame + 10 * np.arange(n, dtype=np.int64)
  xy = np.stack([np.arange(n), 100 * ped_id + np.arange(n)], axis=-1).astype(np.float64)
  return tracks.Track(source=source, ped_id=ped_id, frames=frames, xy=xy)


@pytest.mark.parametrize(
  'n, length, stride, starts',
  [(25, 20, 1, [0, 1, 2, 3, 4, 5]), (25, 20, 2, [0, 2, 4]), (20, 20, 1, [0]), (19, 20, 1, [])],
)
def test_windows_of_one_track(n, length, stride, starts):
  result = windows.make_windows([make_track(7, n, first_frame=30)], length=length, stride=stride)
  assert len(result) == len(starts) == (1 + (n - length) // stride if n >= length else 0)
  assert result.xy.shape == (len(starts), length, 2) and result.xy.dtype == np.float64
  for window, start in zip(result.xy, starts, strict=True):
    np.testing.assert_array_equal(window, make_track(7, n).xy[start : start + length])
  np.testing.assert_array_equal(result.start_frame, 30 + 10 * np.array(starts, dtype=np.int64))
  np.testing.assert_array_equal(result.ped_id, [7] * len(starts))
  assert result.source.tolist() == ['rec'] * len(starts)


def test_windows_keep_the_tracks_order_and_take_indexes_them():
  given = [make_track(3, 21, source='b'), make_track(1, 10), make_track(2, 22, source='a')]
  result = windows.make_windows(given, length=20)
  assert list(zip(result.source, result.ped_id, result.start_frame, strict=True)) == [
    ('b', 3, 0),
    ('b', 3, 10),
    ('a', 2, 0),
    ('a', 2, 10),
    ('a', 2, 20),
  ]
  taken = result.take([4, 0])
  assert len(taken) == 2 and taken.source.tolist() == ['a', 'b']
  np.testing.assert_array_equal(taken.xy[0], result.xy[4])
  np.testing.assert_array_equal(taken.start_frame, [20, 0])


def test_no_long_enough_track_gives_an_empty_pool():
  result = windows.make_windows([make_track(1, 5)], length=20)
  assert len(result) == 0 and result.xy.shape == (0, 20, 2)


def test_windows_need_two_points_and_a_positive_stride():
  with pytest.raises(ValueError, match='length >= 2'):
    windows.make_windows([make_track(1, 5)], length=1)
  with pytest.raises(ValueError, match='stride >= 1'):
    windows.make_windows([make_track(1, 5)], length=2, stride=0)


def test_protocol_pool_sizes(pools):
  # PROTOCOL.md section 3.
  assert len(pools['train']) == 10_660
  assert len(pools['test']) == 14_295
  assert np.unique(pools['train'].source).tolist() == ['students003', 'uni_examples']


@pytest.mark.parametrize(
  'length, count', [(8, 35_765), (12, 31_996), (16, 28_363), (20, 24_955), (24, 21_874)]
)
def test_window_counts_match_source_md(length, count):
  pool = windows.read_pool(univ_files(windows.FILE_CODES), length=length)
  assert len(pool) == count


def test_pools_are_in_canonical_order(pools):
  for pool in pools.values():
    order = [windows.FILE_CODES[s] for s in pool.source]
    keys = list(zip(order, pool.ped_id, pool.start_frame, strict=True))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@pytest.mark.parametrize('split, size, split_index', [('train', 10_000, 0), ('test', 2_379, 1)])
def test_draw_is_the_protocol_formula(pools, split, size, split_index):
  pool = pools[split]
  drawn = windows.draw(pool, size, seed=0, split_index=split_index)
  # PROTOCOL.md section 3, verbatim.
  expected = sorted(np.random.default_rng([0, split_index]).choice(len(pool), size, replace=False))
  assert len(drawn) == size
  np.testing.assert_array_equal(drawn.xy, pool.xy[expected])
  np.testing.assert_array_equal(drawn.ped_id, pool.ped_id[expected])
  np.testing.assert_array_equal(drawn.start_frame, pool.start_frame[expected])
  np.testing.assert_array_equal(drawn.source, pool.source[expected])


def test_draw_depends_on_seed_and_split(pools):
  pool = pools['test']
  first = windows.draw(pool, 100, seed=0, split_index=1)
  np.testing.assert_array_equal(windows.draw(pool, 100, seed=0, split_index=1).xy, first.xy)
  assert not np.array_equal(windows.draw(pool, 100, seed=1, split_index=1).xy, first.xy)
  assert not np.array_equal(windows.draw(pool, 100, seed=0, split_index=0).xy, first.xy)


def test_draw_larger_than_pool_is_an_error(pools):
  with pytest.raises(ValueError, match='cannot draw 14296 windows from a pool of 14295'):
    windows.draw(pools['test'], 14_296, seed=0, split_index=1)


def test_train_and_test_share_no_recording_or_pedestrian(pools):
  train = windows.draw(pools['train'], 10_000, seed=0, split_index=0)
  test = windows.draw(pools['test'], 2_379, seed=0, split_index=1)
  assert not set(train.source) & set(test.source)
  pedestrians = lambda w: set(zip(w.source, w.ped_id, strict=True))
  assert not pedestrians(train) & pedestrians(test)
