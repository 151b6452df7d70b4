"""Tests for trajcross_jax.data.readers: text, CSV, GeoJSON and GPX track readers."""

import datetime
import json
import logging
import pathlib
import re
import time

import numpy as np
import pytest

from trajcross_jax.data import readers


def write(tmp_path: pathlib.Path, text: str, name: str) -> pathlib.Path:
  path = tmp_path / name
  path.write_text(text)
  return path


def epoch(text: str) -> float:
  """Seconds since the epoch of an ISO time, naive = UTC (computed independently of readers)."""
  moment = datetime.datetime.fromisoformat(text)
  if moment.tzinfo is None:
    moment = moment.replace(tzinfo=datetime.UTC)
  return (moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)).total_seconds()


def starts(path: pathlib.Path, where: str = '') -> str:
  """A regex matching a message that starts with the path and `where`."""
  return '^' + re.escape(f'{path}{where}')


def skipped_warnings(caplog) -> list[str]:
  return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# --- frame ped x y text ---------------------------------------------------------------------------


def test_text_reads_tabs_spaces_and_blank_lines(tmp_path):
  path = write(tmp_path, '0\t1\t1.0\t2.0\n10  1 1.5\t 2.5\n\n20.0 1.0 2.0 3.0  \n', 'rec.txt')
  (track,) = readers.read_text(path)
  assert (track.source, track.track_id, len(track)) == ('rec', '1', 3)
  assert (track.time_unit, track.coordinates) == ('frame', 'metres')
  np.testing.assert_array_equal(track.times, [0, 10, 20])
  np.testing.assert_array_equal(track.coords, [[1.0, 2.0], [1.5, 2.5], [2.0, 3.0]])
  assert track.times.dtype == np.float64 and track.coords.dtype == np.float64
  assert track.where == (f'{path}:1', f'{path}:2', f'{path}:4')


def test_text_groups_by_ped_sorted_by_frame_without_splitting_gaps(tmp_path):
  rows = ['20 10 0 0', '0 10 1 1', '500 10 2 2', '10 2 3 3', '0 2 4 4']
  path = write(tmp_path, '\n'.join(rows), 'rec.txt')
  result = readers.read_text(path, source='students001')
  assert [(t.source, t.track_id) for t in result] == [('students001', '2'), ('students001', '10')]
  np.testing.assert_array_equal(result[0].times, [0, 10])
  np.testing.assert_array_equal(result[0].coords[:, 0], [4, 3])
  np.testing.assert_array_equal(result[1].times, [0, 20, 500])  # The gap stays in one track.
  np.testing.assert_array_equal(result[1].coords[:, 0], [1, 0, 2])
  assert result[1].where == (f'{path}:2', f'{path}:1', f'{path}:3')


@pytest.mark.parametrize(
  'text, line, what',
  [
    ('0 1 1.0 2.0\n10 1 1.0\n', 2, 'expected 4 columns (frame ped x y), got 3'),
    ('0 1 1.0 2.0 7\n', 1, 'expected 4 columns'),
    ('0 1 1.0 2.0\n10 1 abc 2.0\n', 2, "x 'abc' is not a number"),
    ('0 1 1.0 2.0\n\n10 1 nan 2.0\n', 3, "x is 'nan', not a finite number"),
    ('0 1 1.0 -inf\n', 1, "y is '-inf', not a finite number"),
    ('0 1.5 1.0 2.0\n', 1, "ped '1.5' is not an integer"),
    ('0.5 1 1.0 2.0\n', 1, "frame '0.5' is not an integer"),
    (
      '0 1 1.0 2.0\n0 2 1.0 2.0\n0.0 1.0 5.0 5.0\n',
      3,
      'duplicate row for frame 0, ped 1 (first at line 1)',
    ),
  ],
)
def test_text_bad_rows_name_file_and_line(tmp_path, text, line, what):
  path = write(tmp_path, text, 'rec.txt')
  with pytest.raises(readers.TrackFileError, match=starts(path, f':{line}: ') + re.escape(what)):
    readers.read_text(path)


@pytest.mark.parametrize('text', ['', '\n  \n\t\n'])
def test_text_empty_file(tmp_path, text):
  path = write(tmp_path, text, 'rec.txt')
  with pytest.raises(readers.TrackFileError, match=starts(path, ': the file has no rows') + '$'):
    readers.read_text(path)


@pytest.mark.parametrize('reader', list(readers.READERS.values()))
def test_missing_file(tmp_path, reader):
  path = tmp_path / 'absent.txt'
  kwargs = {'columns': {}} if reader is readers.read_csv else {}
  with pytest.raises(readers.TrackFileError, match=starts(path, ': no such track file') + '$'):
    reader(path, **kwargs)


def test_unreadable_file_is_one_line(tmp_path):
  path = tmp_path / 'rec.txt'
  path.write_bytes(b'0 1 \xff\xfe 2\n')
  with pytest.raises(readers.TrackFileError, match=starts(path, ': cannot read')) as error:
    readers.read_text(path)
  assert '\n' not in str(error.value)


def test_text_skip_drops_bad_rows_and_logs_once(tmp_path, caplog):
  rows = ['0 1 0 0', '10 1 abc 0', '20 1 xyz 0', '0 1 9 9', '10 1 nan 1', '30 1 3 3', '40 1']
  path = write(tmp_path, '\n'.join(rows), 'rec.txt')
  with caplog.at_level(logging.WARNING):
    (track,) = readers.read_text(path, on_bad_row='skip')
  np.testing.assert_array_equal(track.times, [0, 30])
  np.testing.assert_array_equal(track.coords, [[0, 0], [3, 3]])  # The first of a duplicate stays.
  (message,) = skipped_warnings(caplog)
  assert message == (
    f"{path}: skipped 5 rows: 2 x 'x is not a number', 1 x 'x is not finite', "
    "1 x 'expected 4 columns', 1 x 'duplicate (frame, ped)'"
  )


def test_skip_with_nothing_left_still_raises(tmp_path, caplog):
  path = write(tmp_path, '0 1 a 0\n', 'rec.txt')
  with caplog.at_level(logging.WARNING):
    with pytest.raises(readers.TrackFileError, match=starts(path, ': no rows left')):
      readers.read_text(path, on_bad_row='skip')
  assert len(skipped_warnings(caplog)) == 1


def test_no_warning_when_nothing_skipped(tmp_path, caplog):
  path = write(tmp_path, '0 1 0 0\n', 'rec.txt')
  with caplog.at_level(logging.WARNING):
    readers.read_text(path, on_bad_row='skip')
  assert skipped_warnings(caplog) == []


@pytest.mark.parametrize('reader', list(readers.READERS.values()))
def test_unknown_on_bad_row(tmp_path, reader):
  path = write(tmp_path, '0 1 0 0\n', 'rec.txt')
  kwargs = {'columns': {}} if reader is readers.read_csv else {}
  with pytest.raises(ValueError, match="on_bad_row must be one of .* got 'ignore'"):
    reader(path, on_bad_row='ignore', **kwargs)


# --- CSV ------------------------------------------------------------------------------------------

LONLAT_COLUMNS = {'track': 'who', 'time': 'when', 'lon': 'lng', 'lat': 'latitude'}
LONLAT_CSV = """\
who;when;lng;latitude;note
walker;2024-03-01T10:00:05;2.35;48.85;b
7;2024-03-01T10:00:00+01:00;-0.1;51.5;x

walker;2024-03-01T10:00:00Z;2.3;48.8;a
walker;2024-03-01T10:00:10.5;2.4;48.9;c
"""


def test_csv_lonlat_semicolon_iso_times(tmp_path):
  path = write(tmp_path, LONLAT_CSV, 'walk.csv')
  result = readers.read_csv(path, LONLAT_COLUMNS, delimiter=';')
  # Ids are not all integers, so they sort as text: '7' < 'walker'.
  assert [(t.source, t.track_id, len(t)) for t in result] == [
    ('walk', '7', 1),
    ('walk', 'walker', 3),
  ]
  seven, walker = result
  assert all((t.time_unit, t.coordinates) == ('second', 'lonlat') for t in result)
  np.testing.assert_allclose(seven.times, [epoch('2024-03-01T09:00:00+00:00')])
  np.testing.assert_allclose(
    walker.times,
    [epoch('2024-03-01T10:00:00'), epoch('2024-03-01T10:00:05'), epoch('2024-03-01T10:00:10.5')],
  )
  np.testing.assert_allclose(np.diff(walker.times), [5.0, 5.5])
  np.testing.assert_array_equal(walker.coords, [[2.3, 48.8], [2.35, 48.85], [2.4, 48.9]])
  assert walker.where == (f'{path}:5', f'{path}:2', f'{path}:6')


def test_csv_frames_metres_sniffed_delimiter_and_numeric_ids(tmp_path):
  text = 'frame\tid\tpx\tpy\n10\t10\t1.0\t2.0\n0\t9\t5\t5\n0\t10\t0.5\t1.5\n10\t9\t6\t6\n'
  path = write(tmp_path, text, 'rec.tsv')
  result = readers.read_csv(path, {'track': 'id', 'frame': 'frame', 'x': 'px', 'y': 'py'})
  # All ids are integers: numeric order, so '9' comes before '10'.
  assert [t.track_id for t in result] == ['9', '10']
  assert all((t.time_unit, t.coordinates) == ('frame', 'metres') for t in result)
  np.testing.assert_array_equal(result[1].times, [0, 10])
  np.testing.assert_array_equal(result[1].coords, [[0.5, 1.5], [1.0, 2.0]])
  np.testing.assert_array_equal(result[0].coords, [[5, 5], [6, 6]])


def test_csv_numeric_times_are_seconds(tmp_path):
  path = write(tmp_path, 't,id,x,y\n1.5,a,0,0\n0.25,a,1,1\n', 'rec.csv')
  (track,) = readers.read_csv(path, {'track': 'id', 'time': 't', 'x': 'x', 'y': 'y'})
  assert track.time_unit == 'second'
  np.testing.assert_array_equal(track.times, [0.25, 1.5])


@pytest.mark.parametrize('text', ['abc\ndef\n', 'a,b;c\nx\n'])
def test_csv_delimiter_that_cannot_be_told(tmp_path, text):
  path = write(tmp_path, text, 'rec.csv')
  with pytest.raises(readers.TrackFileError, match=starts(path, ': cannot tell the delimiter')):
    readers.read_csv(path, {'track': 'abc'})


XY = {'track': 'id', 'frame': 'f', 'x': 'x', 'y': 'y'}


@pytest.mark.parametrize(
  'columns, what',
  [
    ({'frame': 'f', 'x': 'x', 'y': 'y'}, "needs a 'track' role"),
    ({'track': 'id', 'x': 'x', 'y': 'y'}, "exactly one of 'frame' or 'time'"),
    ({'track': 'id', 'frame': 'f', 'time': 'f', 'x': 'x', 'y': 'y'}, "exactly one of 'frame'"),
    ({'track': 'id', 'frame': 'f', 'x': 'x'}, "both 'x' and 'y' or both 'lon' and 'lat'"),
    ({'track': 'id', 'frame': 'f', 'x': 'x', 'lat': 'y'}, "both 'x' and 'y'"),
    ({**XY, 'x': 'east'}, "the x column 'east' is not in the header"),
    ({**XY, 'speed': 'x'}, 'unknown column roles'),
  ],
)
def test_csv_bad_columns_name_role_and_header(tmp_path, columns, what):
  path = write(tmp_path, 'f,id,x,y\n0,1,0,0\n', 'rec.csv')
  expected = starts(path, ': ') + '.*' + re.escape(what)
  with pytest.raises(readers.TrackFileError, match=expected) as error:
    readers.read_csv(path, columns)
  assert "(header: 'f', 'id', 'x', 'y')" in str(error.value)


LL = {'track': 'id', 'time': 't', 'lon': 'lon', 'lat': 'lat'}


@pytest.mark.parametrize(
  'row, columns, what',
  [
    ('0,1,0', XY, 'expected 4 fields as in the header, got 3'),
    ('0,1,0,0,9', XY, 'expected 4 fields'),
    ('0,,0,0', XY, 'id is empty'),
    ('0,1,abc,0', XY, "x 'abc' is not a number"),
    ('0,1,0,inf', XY, "y is 'inf', not a finite number"),
    ('0,1,NaN,0', XY, "x is 'NaN', not a finite number"),
    ('2.5,1,0,0', XY, "f '2.5' is not an integer"),
    ('yesterday,1,0,0', LL, "t 'yesterday' is neither a number nor an ISO 8601 time"),
    ('0,1,10,91', LL, 'lat 91 is outside [-90, 90]'),
    ('0,1,-180.5,0', LL, 'lon -180.5 is outside [-180, 180]'),
  ],
)
def test_csv_bad_rows_name_file_line_and_column(tmp_path, row, columns, what):
  header = 'f,id,x,y' if columns is XY else 't,id,lon,lat'
  path = write(tmp_path, f'{header}\n0,1,0,0\n\n{row}\n', 'rec.csv')
  with pytest.raises(readers.TrackFileError, match=starts(path, ':4: ') + re.escape(what)):
    readers.read_csv(path, columns, delimiter=',')


def test_csv_duplicate_time_names_both_lines(tmp_path):
  text = 't,id,lon,lat\n2024-01-01T00:00:00Z,a,0,0\n1704067200,b,0,0\n2024-01-01T00:00:00,a,1,1\n'
  path = write(tmp_path, text, 'rec.csv')
  what = "duplicate t '2024-01-01T00:00:00' in track 'a' (first at line 2)"
  with pytest.raises(readers.TrackFileError, match=starts(path, ':4: ') + re.escape(what)):
    readers.read_csv(path, LL)


@pytest.mark.parametrize('text', ['', '\n\n', 'f,id,x,y\n', 'f,id,x,y\n\n'])
def test_csv_empty_file(tmp_path, text):
  path = write(tmp_path, text, 'rec.csv')
  with pytest.raises(readers.TrackFileError, match=starts(path, ': the file has no rows') + '$'):
    readers.read_csv(path, XY, delimiter=',')


def test_csv_skip_drops_bad_rows_and_logs_once(tmp_path, caplog):
  rows = ['0,1,abc,0', '1,1,1,1', '0,1,9,91', '0,1,0,0', '2,1,x,0', '0,1,5,5', '3,1']
  path = write(tmp_path, 't,id,lon,lat\n' + '\n'.join(rows) + '\n', 'rec.csv')
  with caplog.at_level(logging.WARNING):
    (track,) = readers.read_csv(path, LL, on_bad_row='skip')
  np.testing.assert_array_equal(track.times, [0, 1])
  np.testing.assert_array_equal(track.coords, [[0, 0], [1, 1]])
  assert track.where == (f'{path}:5', f'{path}:3')
  (message,) = skipped_warnings(caplog)
  assert message == (
    f"{path}: skipped 5 rows: 2 x 'lon is not a number', 1 x 'lat out of range', "
    "1 x 'wrong number of fields', 1 x 'duplicate t'"
  )


def test_csv_skip_still_raises_for_a_bad_header(tmp_path):
  path = write(tmp_path, 'f,id,x,y\n0,1,0,0\n', 'rec.csv')
  with pytest.raises(readers.TrackFileError, match="column 'z' is not in the header"):
    readers.read_csv(path, {**XY, 'y': 'z'}, on_bad_row='skip')


# --- GeoJSON --------------------------------------------------------------------------------------


def feature(geometry, **properties):
  return {'type': 'Feature', 'properties': properties, 'geometry': geometry}


def line(coords):
  return {'type': 'LineString', 'coordinates': coords}


def multi(parts):
  return {'type': 'MultiLineString', 'coordinates': parts}


def collection(*features):
  return {'type': 'FeatureCollection', 'features': list(features)}


def write_json(tmp_path, data, name='walk.geojson'):
  return write(tmp_path, json.dumps(data, indent=1), name)


def test_geojson_line_and_multiline_with_times(tmp_path):
  data = collection(
    feature(line([[2.3, 48.8, 35.0], [2.31, 48.81, 36.0]]), who='ann', ts=[100, 101.5]),
    feature(
      multi([[[1, 2], [1.1, 2.1], [1.2, 2.2]], [[-5, -6]]]),
      who=7,
      ts=[['2024-01-01T00:00:00Z', '2024-01-01T00:00:01Z', '2024-01-01T00:00:03Z'], [50]],
    ),
  )
  path = write_json(tmp_path, data)
  result = readers.read_geojson(path, track_property='who', time_property='ts')
  assert [(t.source, t.track_id, len(t)) for t in result] == [
    ('walk', 'ann', 2),
    ('walk', '7', 3),
    ('walk', '7', 1),
  ]
  assert all((t.time_unit, t.coordinates) == ('second', 'lonlat') for t in result)
  np.testing.assert_array_equal(result[0].coords, [[2.3, 48.8], [2.31, 48.81]])  # No altitude.
  np.testing.assert_array_equal(result[0].times, [100, 101.5])
  t0 = epoch('2024-01-01T00:00:00+00:00')
  np.testing.assert_array_equal(result[1].times, [t0, t0 + 1, t0 + 3])
  np.testing.assert_array_equal(result[1].coords, [[1, 2], [1.1, 2.1], [1.2, 2.2]])
  np.testing.assert_array_equal(result[2].times, [50])
  np.testing.assert_array_equal(result[2].coords, [[-5, -6]])
  assert result[1].where[2] == f'{path}: feature 1, part 0, point 2'
  assert result[2].where == (f'{path}: feature 1, part 1, point 0',)


def test_geojson_without_properties_uses_index_and_point_order(tmp_path):
  data = collection(feature(line([[0, 0], [0, 1]])), feature(line([[1, 1], [1, 0], [2, 2]])))
  path = write_json(tmp_path, data)
  result = readers.read_geojson(path, source='park')
  assert [(t.source, t.track_id, t.time_unit) for t in result] == [
    ('park', '0', 'index'),
    ('park', '1', 'index'),
  ]
  np.testing.assert_array_equal(result[1].times, [0, 1, 2])
  np.testing.assert_array_equal(result[1].coords, [[1, 1], [1, 0], [2, 2]])
  assert result[1].where[1] == f'{path}: feature 1, point 1'


def test_geojson_single_feature(tmp_path):
  path = write_json(tmp_path, feature(line([[3, 4]])))
  (track,) = readers.read_geojson(path)
  np.testing.assert_array_equal(track.coords, [[3, 4]])


def test_geojson_not_json_names_the_line(tmp_path):
  path = write(tmp_path, '{"type": "FeatureCollection",\n "features": [,]}\n', 'walk.geojson')
  with pytest.raises(readers.TrackFileError, match=starts(path, ':2: not JSON')):
    readers.read_geojson(path)


@pytest.mark.parametrize(
  'data, what',
  [
    ([1, 2], "not a GeoJSON FeatureCollection or Feature (type 'list')"),
    ({'type': 'Point', 'coordinates': [0, 0]}, "(type 'Point')"),
    (collection(), 'the file has no features'),
  ],
)
def test_geojson_bad_file(tmp_path, data, what):
  path = write_json(tmp_path, data)
  with pytest.raises(readers.TrackFileError, match=starts(path, ': ') + '.*' + re.escape(what)):
    readers.read_geojson(path, on_bad_row='skip')  # Not a feature's fault: raises even so.


def test_geojson_empty_file(tmp_path):
  path = write(tmp_path, ' \n', 'walk.geojson')
  with pytest.raises(
    readers.TrackFileError, match=starts(path, ': the file has no features') + '$'
  ):
    readers.read_geojson(path)


GOOD = feature(line([[0, 0], [1, 1]]), id='g', t=[0, 1])


@pytest.mark.parametrize(
  'bad, where, what',
  [
    (feature({'type': 'Point', 'coordinates': [0, 0]}), '', "geometry type 'Point' is not"),
    (feature(None), '', 'has a null geometry'),
    (feature(line([[0, 0], [1, 1]]), t=[0, 1]), '', "has no property 'id'"),
    (feature(line([[0, 0], [1, 1]]), id=1), '', "has no property 't'"),
    (feature(line([[0, 0], [1, 1]]), id=1, t=[0]), '', 't has 1 values for 2 points'),
    (feature(line([[0, 0], [1]]), id=1, t=[0, 1]), ', point 1', 'coordinate [1] is not 2 or 3'),
    (feature(line([[0, 0], [1, 2, 3, 4]]), id=1, t=[0, 1]), ', point 1', 'is not 2 or 3'),
    (feature(line([[0, 'a']]), id=1, t=[0]), ', point 0', 'is not 2 or 3 numbers'),
    (feature(line([[0, 0], [float('nan'), 0]]), id=1, t=[0, 1]), ', point 1', 'is not finite'),
    (feature(line([[0, 0], [0, 95]]), id=1, t=[0, 1]), ', point 1', 'lat 95 is outside'),
    (feature(line([[181, 0]]), id=1, t=[0]), ', point 0', 'lon 181 is outside [-180, 180]'),
    (feature(line([]), id=1, t=[]), '', 'has no points'),
    (feature(multi([[[0, 0]], []]), id=1, t=[[0], []]), ', part 1', 'has no points'),
    (feature(line([[0, 0], [1, 1]]), id=1, t=[5, 5]), ', point 1', 't 5 is not after the prev'),
    (feature(line([[0, 0]]), id=1, t=['soon']), ', point 0', "t 'soon' is neither a number"),
    (
      feature(multi([[[0, 0]], [[0, 0], [1, 1]]]), id=1, t=[[0], [1]]),
      '',
      't has 1 values for 2 points',
    ),
  ],
)
def test_geojson_bad_feature_names_feature_and_point(tmp_path, bad, where, what):
  path = write_json(tmp_path, collection(GOOD, bad))
  expected = starts(path, f': feature 1{where}: ') + '.*' + re.escape(what)
  with pytest.raises(readers.TrackFileError, match=expected):
    readers.read_geojson(path, track_property='id', time_property='t')


def test_geojson_skip_drops_bad_features(tmp_path, caplog):
  features = [
    feature(None),
    GOOD,
    feature(line([[0, 0], [0, 95]]), id='x', t=[0, 1]),
    feature({'type': 'Point', 'coordinates': [0, 0]}),
    feature(None),
  ]
  path = write_json(tmp_path, collection(*features))
  with caplog.at_level(logging.WARNING):
    (track,) = readers.read_geojson(path, 'id', 't', on_bad_row='skip')
  assert track.track_id == 'g'
  assert track.where[0] == f'{path}: feature 1, point 0'
  (message,) = skipped_warnings(caplog)
  assert message == (
    f"{path}: skipped 4 features: 2 x 'null geometry', 1 x 'lat out of range', 1 x 'Point geometry'"
  )


# --- GPX ------------------------------------------------------------------------------------------


def gpx(*tracks: str) -> str:
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">\n'
    + ''.join(tracks)
    + '</gpx>\n'
  )


def trk(*segments: str, name: str | None = None) -> str:
  named = f'<name>{name}</name>' if name else ''
  return f'<trk>{named}' + ''.join(f'<trkseg>{s}</trkseg>' for s in segments) + '</trk>\n'


def pt(lat, lon, time: str | None = None) -> str:
  timed = f'<time>{time}</time>' if time else ''
  return f'<trkpt lat="{lat}" lon="{lon}">{timed}</trkpt>'


def test_gpx_track_with_two_segments(tmp_path):
  first = pt(48.8, 2.3, '2024-05-01T08:00:00Z') + pt(48.81, 2.31, '2024-05-01T10:00:02+02:00')
  second = pt(10, 20, '2024-05-01T08:01:00') + pt(10.5, 20.5, '2024-05-01T08:01:00.5')
  path = write(tmp_path, gpx(trk(first, second, name='morning run')), 'run.gpx')
  result = readers.read_gpx(path)
  assert [(t.source, t.track_id, len(t)) for t in result] == [
    ('run', 'morning run', 2),
    ('run', 'morning run', 2),
  ]
  assert all((t.time_unit, t.coordinates) == ('second', 'lonlat') for t in result)
  t0 = epoch('2024-05-01T08:00:00+00:00')
  np.testing.assert_allclose(result[0].times, [t0, t0 + 2])
  np.testing.assert_allclose(result[1].times, [t0 + 60, t0 + 60.5])
  np.testing.assert_array_equal(result[0].coords, [[2.3, 48.8], [2.31, 48.81]])
  np.testing.assert_array_equal(result[1].coords, [[20, 10], [20.5, 10.5]])
  assert result[1].where[1] == f'{path}: track 0 (morning run), segment 1, point 1'


def test_gpx_untimed_unnamed_tracks(tmp_path):
  tracks = trk(pt(1, 2) + pt(3, 4) + pt(5, 6)), trk('', pt(7, 8))
  path = write(tmp_path, gpx(*tracks), 'run.gpx')
  result = readers.read_gpx(path, source='other')
  assert [(t.source, t.track_id, t.time_unit) for t in result] == [
    ('other', 'track0', 'index'),
    ('other', 'track1', 'index'),
  ]
  np.testing.assert_array_equal(result[0].times, [0, 1, 2])
  np.testing.assert_array_equal(result[0].coords, [[2, 1], [4, 3], [6, 5]])
  assert result[1].where == (f'{path}: track 1, segment 1, point 0',)  # Segment 0 is empty.


@pytest.mark.parametrize(
  'text, what',
  [
    ('<gpx><trk>', 'not a readable GPX file'),
    ('not xml at all', 'not a readable GPX file'),
    (gpx(), 'the file has no track points'),
    (gpx(trk('')), 'the file has no track points'),
    (' \n', 'the file has no tracks'),
  ],
)
def test_gpx_bad_file(tmp_path, text, what):
  path = write(tmp_path, text, 'run.gpx')
  with pytest.raises(readers.TrackFileError, match=starts(path, ': ') + re.escape(what)):
    readers.read_gpx(path, on_bad_row='skip')


@pytest.mark.parametrize(
  'points, at, what',
  [
    (pt(1, 2, '2024-01-01T00:00:00Z') + pt(1, 2), 1, 'has no time, but other points'),
    (pt(1, 2) + pt(1, 2, '2024-01-01T00:00:00Z'), 0, 'has no time, but other points'),
    (
      pt(1, 2, '2024-01-01T00:00:05Z') + pt(1, 2, '2024-01-01T00:00:05Z'),
      1,
      "is not after the previous point's",
    ),
    (pt(1, 2, '2024-01-01T00:00:05Z') + pt(1, 2, '2024-01-01T00:00:04Z'), 1, 'is not after'),
    (pt(1, 2) + pt(91, 2), 1, 'lat 91 is outside [-90, 90]'),
    (pt(1, 2) + pt(0, 200), 1, 'lon 200 is outside [-180, 180]'),
  ],
)
def test_gpx_bad_point_names_track_segment_point(tmp_path, points, at, what):
  path = write(tmp_path, gpx(trk(pt(0, 0)), trk(pt(0, 0), points, name='x')), 'run.gpx')
  expected = starts(path, f': track 1 (x), segment 1, point {at}: ') + '.*' + re.escape(what)
  with pytest.raises(readers.TrackFileError, match=expected):
    readers.read_gpx(path)


def test_gpx_skip_drops_bad_points(tmp_path, caplog):
  times = ['2024-01-01T00:00:00Z', '2024-01-01T00:00:02Z', '2024-01-01T00:00:01Z']
  points = pt(1, 2, times[0]) + pt(95, 2, times[1]) + pt(1, 3) + pt(1, 4, times[2])
  points += pt(1, 5, times[1])
  path = write(tmp_path, gpx(trk(points)), 'run.gpx')
  with caplog.at_level(logging.WARNING):
    (track,) = readers.read_gpx(path, on_bad_row='skip')
  t0 = epoch('2024-01-01T00:00:00+00:00')
  np.testing.assert_array_equal(track.times, [t0, t0 + 1, t0 + 2])
  np.testing.assert_array_equal(track.coords[:, 0], [2, 4, 5])
  assert track.where[1] == f'{path}: track 0, segment 0, point 3'
  (message,) = skipped_warnings(caplog)
  assert message == f"{path}: skipped 2 points: 1 x 'lat out of range', 1 x 'missing time'"


def test_raw_track_checks_shapes():
  with pytest.raises(ValueError, match='inconsistent shapes'):
    readers.RawTrack('s', '1', np.zeros(2), np.zeros((3, 2)), 'frame', 'metres', ('a', 'b'))
  with pytest.raises(ValueError, match="time_unit 'hour'"):
    readers.RawTrack('s', '1', np.zeros(1), np.zeros((1, 2)), 'hour', 'metres', ('a',))


def test_readers_registry():
  assert readers.READERS == {
    'tracks': readers.read_text,
    'csv': readers.read_csv,
    'geojson': readers.read_geojson,
    'gpx': readers.read_gpx,
  }


@pytest.fixture
def local_zone_five_hours_west(monkeypatch):
  """Makes the process's local time zone UTC-5, so a naive time read as local would be off."""
  monkeypatch.setenv('TZ', 'EST+05')  # A POSIX zone: needs no tz database.
  time.tzset()
  yield
  monkeypatch.undo()
  time.tzset()


def test_naive_times_are_utc_whatever_the_local_zone(tmp_path, local_zone_five_hours_west):
  path = write(tmp_path, 't,id,x,y\n1970-01-02T00:00:00,a,0,0\n', 'rec.csv')
  (track,) = readers.read_csv(path, {'track': 'id', 'time': 't', 'x': 'x', 'y': 'y'})
  np.testing.assert_array_equal(track.times, [86400.0])
  path = write(tmp_path, gpx(trk(pt(0, 0, '1970-01-02T00:00:00'))), 'run.gpx')
  (track,) = readers.read_gpx(path)
  np.testing.assert_array_equal(track.times, [86400.0])
