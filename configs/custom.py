"""The default model and schedule on your own recordings.

Name the files and their format, then prepare, preview, train and evaluate as with univ:

  python -m trajcross_jax.main --config configs/custom.py --workdir runs/mine --mode=prepare \
    --config.data.files='tracks/*.gpx' --config.data.format=gpx --config.data.resample=time \
    --config.data.time_step=1.0

Lon/lat data is projected to one local metric frame chosen from the data (stored with the
dataset). Tracks are cut at gaps, resampled if asked, cut into windows of data.window_length
points, and split into train and test by whole tracks or by file.
"""

import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  data = config.data
  data.name = 'custom'
  data.files = ''  # A path or a glob (quote it on the command line): every recording.
  data.format = 'tracks'  # 'tracks' (frame ped x y), 'csv', 'geojson' or 'gpx'.
  # 'csv': role -> column name. Roles: 'track'; 'frame' (integers) or 'time' (seconds or ISO
  # 8601); 'x' and 'y' (metres) or 'lon' and 'lat' (degrees).
  data.columns = ml_collections.ConfigDict(
    {'track': 'track', 'time': 'time', 'lon': 'lon', 'lat': 'lat'}
  )
  data.delimiter = ''  # 'csv': the delimiter; '': guessed from the file.
  data.track_property = ''  # 'geojson': the feature property holding the track id; '': index.
  data.time_property = ''  # 'geojson': the property holding per-point times; '': none.
  data.projection = 'local'  # lon/lat data: 'local' (transverse Mercator at its centre) or 'utm'.
  # 'none': points as they are (integer frames; a step other than the usual one cuts the
  # track); 'time': every time_step, linear in time; 'distance': every `spacing` metres.
  data.resample = 'none'
  data.time_step = 0.4  # Seconds (or frames) between resampled points.
  data.spacing = 0.5  # Metres between resampled points.
  data.max_gap = 10.0  # A longer time without a point cuts the track (seconds or frames).
  data.split_by = 'track'  # 'track': test_fraction of the tracks; 'file': data.test_files.
  data.test_fraction = 0.2  # Share of whole tracks in the test split (seeded by data.seed).
  data.test_files = ()  # split_by='file': file names (stems) or globs of the test recordings.
  data.on_bad_row = 'error'  # 'skip': drop malformed rows, logging how many and why.
  data.train_size = 0  # 0: every training window; n: n drawn as PROTOCOL.md section 3 draws.
  data.test_size = 0  # 0: every test window; n: n drawn.
  return config
