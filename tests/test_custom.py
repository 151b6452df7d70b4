"""Your own recordings end to end: lat/lon files -> dataset -> train -> eval, and other scenes.

Real-format files made here: GPS-like tracks walked at a constant speed near Nicosia, written as
a semicolon CSV in lon/lat with ISO times at irregular intervals, as GeoJSON and as GPX.
"""

import datetime
import json
import pathlib
import socket
import time

import numpy as np
import pytest

from configs import custom as custom_config
from configs import test as test_config
from trajcross_jax import evaluate, train
from trajcross_jax.data import builder, custom, geo, pipeline, preview, resample

PLACE = geo.Projection(
  'local', '+proj=tmerc +lat_0=35.17 +lon_0=33.36 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs'
)
SPEED = 1.3  # m/s
T0 = datetime.datetime(2026, 5, 1, 8, 0, 0, tzinfo=datetime.UTC)


def walks(num_tracks: int = 8, seconds: int = 60, seed: int = 0):
  """Straight walks at SPEED in metres, sampled at irregular times: [(times, xy, heading)]."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(num_tracks):
    times = np.cumsum(rng.uniform(0.6, 1.4, seconds))
    heading = rng.uniform(-np.pi, np.pi)
    start = rng.uniform(-40, 40, 2)
    direction = np.array([np.cos(heading), np.sin(heading)])
    out.append((times, start + SPEED * times[:, None] * direction, direction))
  return out


def iso(seconds: float) -> str:
  return (T0 + datetime.timedelta(seconds=float(seconds))).isoformat()


def write_csv(path: pathlib.Path, tracks) -> pathlib.Path:
  rows = ['who;when;longitude;latitude;note']
  for k, (times, xy, _) in enumerate(tracks):
    lonlat = PLACE.inverse(xy)
    rows += [
      f'walker{k};{iso(t)};{lo:.9f};{la:.9f};x' for t, (lo, la) in zip(times, lonlat, strict=True)
    ]
  path.write_text('\n'.join(rows) + '\n')
  return path


def write_gpx(path: pathlib.Path, tracks, name: str | None = None) -> pathlib.Path:
  """One <trk> per track, named walk<k>, or all `name`."""
  segments = []
  for k, (times, xy, _) in enumerate(tracks):
    points = ''.join(
      f'<trkpt lat="{la:.9f}" lon="{lo:.9f}"><time>{iso(t)}</time></trkpt>'
      for t, (lo, la) in zip(times, PLACE.inverse(xy), strict=True)
    )
    segments.append(f'<trk><name>{name or f"walk{k}"}</name><trkseg>{points}</trkseg></trk>')
  path.write_text(
    '<?xml version="1.0"?><gpx version="1.1" creator="test" '
    f'xmlns="http://www.topografix.com/GPX/1/1">{"".join(segments)}</gpx>'
  )
  return path


CSV_COLUMNS = {'track': 'who', 'time': 'when', 'lon': 'longitude', 'lat': 'latitude'}


def tiny_config(path, data_dir, **data):
  """configs/test.py's tiny model on configs/custom.py's data section."""
  config = test_config.get_config()
  config.data = custom_config.get_config().data
  config.data.files = str(path)
  config.data.data_dir = str(data_dir)
  for key, value in data.items():
    config.data[key] = value
  return config


def csv_config(tmp_path, **data):
  path = write_csv(tmp_path / 'gps.csv', walks())
  settings = dict(
    format='csv',
    columns=CSV_COLUMNS,
    delimiter=';',
    resample='time',
    time_step=1.0,
    max_gap=5.0,
    test_fraction=0.3,
  )
  settings.update(data)
  return tiny_config(path, tmp_path / 'tfds', **settings)


def test_resampling_a_gps_track_is_exact(tmp_path):
  tracks = walks(num_tracks=2)
  path = write_gpx(tmp_path / 'walks.gpx', tracks)
  options = custom.Options(format='gpx', resample='time', time_step=1.0, max_gap=5.0)
  recordings = custom.load(custom.resolve_files(str(path)), options)
  assert recordings.projection.kind == 'local'
  assert len(recordings.tracks) == 2
  for track, (times, _, direction) in zip(recordings.tracks, tracks, strict=True):
    # Every resampled point is SPEED metres from the last, along the walk's straight line, to
    # the millimetre (the files hold degrees to 9 decimals: about 0.1 mm).
    steps = np.diff(track.xy, axis=0)
    np.testing.assert_allclose(np.linalg.norm(steps, axis=1), SPEED, atol=1e-3)
    np.testing.assert_allclose(steps, SPEED * np.broadcast_to(direction, steps.shape), atol=1e-3)
    np.testing.assert_array_equal(np.diff(track.frames), 1)
    assert len(track) == int(np.floor(times[-1] - times[0] + 1e-9)) + 1
  # The dataset's own frame is centred on the data, not at the place we projected from.
  centre = recordings.projection.inverse(np.zeros((1, 2)))[0]
  lonlat = np.concatenate([PLACE.inverse(xy) for _, xy, _ in tracks])
  np.testing.assert_allclose(centre, lonlat.mean(axis=0), atol=1e-3)


def test_a_gap_cuts_a_track_and_distance_resampling_spaces_points(tmp_path):
  (times, xy, _), *_ = walks(num_tracks=1, seconds=80)
  times = np.where(np.arange(len(times)) >= 40, times + 30, times)  # A 30 s gap at point 40.
  write_csv(tmp_path / 'gap.csv', [(times, xy, None)])
  files = custom.resolve_files(str(tmp_path / 'gap.csv'))
  base = dict(format='csv', columns=tuple(CSV_COLUMNS.items()), max_gap=5.0)
  by_time = custom.load(files, custom.Options(resample='time', time_step=1.0, **base))
  assert len(by_time.tracks) == 2 and by_time.tracks[0].ped_id == by_time.tracks[1].ped_id
  by_distance = custom.load(files, custom.Options(resample='distance', spacing=2.0, **base))
  assert len(by_distance.tracks) == 2
  for track in by_distance.tracks:
    np.testing.assert_allclose(np.linalg.norm(np.diff(track.xy, axis=0), axis=1), 2.0, atol=1e-6)
  first, second = by_distance.tracks
  assert second.frames[0] > first.frames[-1] + 1  # No window can span the cut.


def test_a_lonlat_dataset_prepares_trains_and_evaluates(tmp_path):
  config = csv_config(tmp_path)
  built = pipeline.prepare(config.data)
  assert built.info.full_name.startswith('trajcross/custom-')
  projection = pipeline.projection(built)
  assert projection is not None and projection.kind == 'local'
  splits = {
    s: pipeline.load_split(built, s, False, ('source', 'track_id', 'box'))
    for s in ('train', 'test')
  }
  ids = {
    s: set(src.get_batch(np.arange(len(src)))['track_id'].tolist()) for s, src in splits.items()
  }
  assert ids['train'] and ids['test'] and not ids['train'] & ids['test']  # Whole tracks.
  assert {i.decode() for i in ids['train'] | ids['test']} == {f'walker{k}' for k in range(8)}
  # Boxes come back as lon/lat near the place.
  box = splits['test'].get_batch(np.arange(1))['box'][0]
  lon_left, lat_top, lon_right, lat_bottom = geo.box_to_lonlat(projection, box)
  assert 33.3 < lon_left < lon_right < 33.42 and 35.1 < lat_bottom < lat_top < 35.24

  work = tmp_path / 'work'
  png = preview.write_preview(config.data, str(work))
  assert png.exists() and len(png.read_bytes()) > 10_000
  train.train(config, str(work))
  results = evaluate.evaluate(config, str(work))
  assert results['dataset'] == built.info.full_name
  saved = json.loads((work / 'eval' / 'results.json').read_text())
  assert saved['dataset'] == built.info.full_name and saved['normalisation']['frame'] == 'train'
  assert saved['normalisation']['center'] == pytest.approx(pipeline.normalisation(built).center)
  assert saved['num_test'] == len(splits['test'])


def test_a_checkpoint_is_evaluated_on_another_dataset(tmp_path, synthetic_data_dir):
  config = test_config.get_config()
  config.data.data_dir = synthetic_data_dir
  work = tmp_path / 'work'
  train.train(config, str(work))
  home = evaluate.evaluate(config, str(work))
  # The same checkpoint on a plaza twice the size, 500 m away, read in either frame.
  config.data.plaza = (32.0, 28.0)
  config.data.origin = (500.0, -300.0)
  config.data.data_dir = str(tmp_path / 'elsewhere')
  away = evaluate.evaluate(config, str(work))
  assert away['dataset'] != home['dataset'] and 'origin500x-300' in away['dataset']
  assert away['normalisation']['center'] == home['normalisation']['center']
  config.eval.normalisation = 'target'
  own = evaluate.evaluate(config, str(work))
  assert own['normalisation']['center'][0] > 400  # The other scene's own centre.
  for results in (away, own):
    assert results['num_test'] == home['num_test']
    assert 0 <= results['traj2img']['top@1'] <= 100
  # Another model is still refused, naming the field.
  config.model.branch_dim = 32
  with pytest.raises(ValueError, match='model.branch_dim: checkpoint 16, config 32'):
    evaluate.evaluate(config, str(work))


def test_resuming_on_another_dataset_is_refused(tmp_path, synthetic_data_dir):
  config = test_config.get_config()
  config.data.data_dir = synthetic_data_dir
  config.train.num_epochs = 1
  work = tmp_path / 'work'
  train.train(config, str(work))
  config.train.num_epochs = 2
  config.data.seed = 5
  with pytest.raises(ValueError, match='data.seed: checkpoint 0, config 5'):
    train.train(config, str(work))


def test_the_default_dataset_builds_with_no_network(tmp_path, monkeypatch):
  def refuse(*args, **kwargs):
    raise OSError('no network in this test')

  monkeypatch.setattr(socket, 'create_connection', refuse)
  monkeypatch.setattr(socket.socket, 'connect', refuse)
  built = builder.make_builder('univ', tmp_path, train_size=6, test_size=5)
  built.download_and_prepare()
  assert built.info.splits['train'].num_examples == 6
  unpacked = pathlib.Path(built.data_dir_root) / 'downloads' / 'packaged_univ'
  sums = builder.packaged_univ_checksums()
  assert sorted(p.stem for p in unpacked.glob('*.txt')) == sorted(sums)


def test_an_offline_download_fails_in_seconds_with_one_line(tmp_path, monkeypatch):
  def refuse(*args, **kwargs):
    raise OSError('no network in this test')

  monkeypatch.setattr(socket, 'create_connection', refuse)
  start = time.perf_counter()
  built = builder.make_builder('univ', tmp_path, univ_download=True, train_size=6, test_size=5)
  with pytest.raises(builder.DownloadError) as raised:
    built.download_and_prepare()
  assert time.perf_counter() - start < 30
  message = str(raised.value)
  assert '\n' not in message and '--config.data.manual_dir=DIR' in message


def test_a_tampered_packaged_file_is_refused(tmp_path, monkeypatch):
  monkeypatch.setattr(
    builder, 'packaged_univ_checksums', lambda: dict.fromkeys(builder._UNIV_FILES, '0' * 64)
  )
  with pytest.raises(ValueError, match='does not match its checksum'):
    builder.make_builder('univ', tmp_path, train_size=6, test_size=5).download_and_prepare()


@pytest.mark.parametrize(
  'data, message',
  [
    ({'files': 'nowhere/*.csv'}, "no file matches 'nowhere/\\*.csv'"),
    ({'resample': 'none'}, 'is not a whole frame'),
    ({'test_fraction': 0.01}, 'the test split has no tracks'),
    ({'split_by': 'file', 'test_files': ('other',)}, "'other' names none of the data files"),
  ],
)
def test_bad_custom_datasets_are_named(tmp_path, data, message):
  config = csv_config(tmp_path, **data)
  with pytest.raises(custom.CustomDataError, match=message):
    pipeline.prepare(config.data)


def test_split_by_file(tmp_path):
  write_csv(tmp_path / 'monday.csv', walks(seed=1))
  write_csv(tmp_path / 'tuesday.csv', walks(seed=2))
  config = csv_config(tmp_path, split_by='file', test_files=('tuesday',))
  config.data.files = str(tmp_path / '*day.csv')
  built = pipeline.prepare(config.data)
  sources = {
    s: set(pipeline.load_split(built, s, True, ('source',)).arrays['source'].tolist())
    for s in ('train', 'test')
  }
  assert sources == {'train': {b'monday'}, 'test': {b'tuesday'}}


def test_overlapping_parts_of_one_track_are_refused(tmp_path):
  (times, xy, _), *_ = walks(num_tracks=1)
  write_gpx(tmp_path / 'twice.gpx', [(times, xy, None), (times + 0.5, xy, None)], name='me')
  # Two <trk> of the same name are one track id: their parts overlap in time.
  options = custom.Options(format='gpx', resample='time', time_step=1.0)
  with pytest.raises(custom.CustomDataError, match='overlap in time'):
    custom.load(custom.resolve_files(str(tmp_path / 'twice.gpx')), options)


def test_resample_functions_are_the_ones_used(tmp_path):
  # The builder's time resampling is resample.by_time: same points for the same track.
  (times, xy, _), *_ = walks(num_tracks=1)
  write_csv(tmp_path / 'one.csv', [(times, xy, None)])
  options = custom.Options(
    format='csv', columns=tuple(CSV_COLUMNS.items()), resample='time', time_step=1.0, max_gap=5.0
  )
  recordings = custom.load(custom.resolve_files(str(tmp_path / 'one.csv')), options)
  lonlat = PLACE.inverse(xy)
  expected = resample.by_time(times, recordings.projection.forward(lonlat), 1.0, 5.0)[0][1]
  np.testing.assert_allclose(recordings.tracks[0].xy, expected, atol=1e-3)
