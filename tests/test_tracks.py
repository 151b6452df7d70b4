"""Tests for trajcross_jax.data.tracks: the `frame ped x y` reader."""

import os
import pathlib
import re

import numpy as np
import pytest

from trajcross_jax.data import tracks


def univ_dir() -> pathlib.Path:
  """The real univ files: $TRAJCROSS_UNIV_DIR, else <repo>/../shared/data/univ."""
  default = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'univ'
  return pathlib.Path(os.environ.get('TRAJCROSS_UNIV_DIR', default))


def write(tmp_path: pathlib.Path, text: str, name: str = 'rec.txt') -> pathlib.Path:
  path = tmp_path / name
  path.write_text(text)
  return path


def test_reads_tabs_spaces_and_blank_lines(tmp_path):
  path = write(tmp_path, '0\t1\t1.0\t2.0\n10  1 1.5\t 2.5\n\n20.0 1.0 2.0 3.0  \n')
  (track,) = tracks.read_tracks(path)
  assert (track.source, track.ped_id) == ('rec', 1)
  np.testing.assert_array_equal(track.frames, [0, 10, 20])
  np.testing.assert_array_equal(track.xy, [[1.0, 2.0], [1.5, 2.5], [2.0, 3.0]])
  assert track.frames.dtype == np.int64 and track.xy.dtype == np.float64


def test_tracks_sorted_by_ped_then_frame(tmp_path):
  rows = ['20 5 0 0', '0 5 1 1', '10 5 2 2', '10 2 3 3', '0 2 4 4']
  result = tracks.read_tracks(write(tmp_path, '\n'.join(rows)))
  assert [t.ped_id for t in result] == [2, 5]
  np.testing.assert_array_equal(result[0].frames, [0, 10])
  np.testing.assert_array_equal(result[0].xy, [[4, 4], [3, 3]])
  np.testing.assert_array_equal(result[1].frames, [0, 10, 20])
  np.testing.assert_array_equal(result[1].xy[:, 0], [1, 2, 0])


def test_source_defaults_to_stem_and_can_be_named(tmp_path):
  path = write(tmp_path, '0 1 0 0\n', name='raw.gith_mangled.txt')
  assert tracks.read_tracks(path)[0].source == 'raw.gith_mangled'
  assert tracks.read_tracks(path, source='students001')[0].source == 'students001'


@pytest.mark.parametrize(
  'frames, pieces',
  [
    ([0, 10, 20, 50, 60], [[0, 10, 20], [50, 60]]),  # A missing stretch.
    ([0, 10, 20, 25, 35], [[0, 10, 20], [25, 35]]),  # A step shorter than usual is a gap too.
    ([0, 10, 20, 30], [[0, 10, 20, 30]]),
  ],
)
def test_a_frame_gap_splits_the_track(tmp_path, frames, pieces):
  # Another pedestrian fixes the file's usual step at 10 whatever ped 3 does.
  rows = [f'{f} 3 {f} 0' for f in frames] + [f'{f} 1 0 0' for f in range(0, 100, 10)]
  result = [t for t in tracks.read_tracks(write(tmp_path, '\n'.join(rows))) if t.ped_id == 3]
  assert [t.frames.tolist() for t in result] == pieces
  for track in result:  # Each piece keeps its own points.
    np.testing.assert_array_equal(track.xy[:, 0], track.frames)


def test_usual_frame_step():
  assert tracks.usual_frame_step(np.array([10, 10, 30, 10, 20])) == 10
  assert tracks.usual_frame_step(np.array([4, 2, 4, 2])) == 2  # A tie goes to the smaller step.
  assert tracks.usual_frame_step(np.array([], dtype=np.int64)) is None


@pytest.mark.parametrize(
  'text, line, what',
  [
    ('0 1 1.0 2.0\n10 1 1.0\n', 2, 'expected 4 columns'),
    ('0 1 1.0 2.0 7\n', 1, 'expected 4 columns'),
    ('0 1 1.0 2.0\n10 1 abc 2.0\n', 2, "x 'abc' is not a number"),
    ('0 1 1.0 2.0\n\n10 1 nan 2.0\n', 3, "x is 'nan', not a finite number"),
    ('0 1 1.0 -inf\n', 1, "y is '-inf', not a finite number"),
    ('0 1.5 1.0 2.0\n', 1, "ped '1.5' is not an integer"),
    ('0 1 1.0 2.0\n0 2 1.0 2.0\n0.0 1.0 5.0 5.0\n', 3, 'duplicate row for frame 0, ped 1'),
  ],
)
def test_bad_rows_name_file_and_line(tmp_path, text, line, what):
  path = write(tmp_path, text)
  with pytest.raises(tracks.TrackFileError) as error:
    tracks.read_tracks(path)
  assert str(error.value).startswith(f'{path}:{line}: ')
  assert what in str(error.value)


@pytest.mark.parametrize('text', ['', '\n  \n\t\n'])
def test_empty_file(tmp_path, text):
  path = write(tmp_path, text)
  with pytest.raises(
    tracks.TrackFileError, match=f'^{re.escape(str(path))}: the file has no rows$'
  ):
    tracks.read_tracks(path)


def test_missing_file(tmp_path):
  path = tmp_path / 'absent.txt'
  with pytest.raises(tracks.TrackFileError, match=f'^{re.escape(str(path))}: no such track file'):
    tracks.read_tracks(path)


def test_real_file_has_every_row_and_no_gaps():
  result = tracks.read_tracks(univ_dir() / 'students001.txt')
  # SOURCE.md: 21,813 rows, 415 pedestrians, frames 0-4430, no gaps (so one track each).
  assert sum(len(t) for t in result) == 21_813
  assert len(result) == len({t.ped_id for t in result}) == 415
  assert [t.ped_id for t in result] == sorted(t.ped_id for t in result)
  assert min(t.frames[0] for t in result) == 0 and max(t.frames[-1] for t in result) == 4430
  assert all(np.all(np.diff(t.frames) == 10) for t in result)
