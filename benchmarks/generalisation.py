"""How a model trained on univ does on scenes it never saw, read in either scene frame.

  python -m benchmarks.generalisation [--epochs 40] [--runs_dir runs/generalisation]

Trains configs/default.py on univ (at --epochs; skipped if its checkpoint is there), then
evaluates that one checkpoint on the univ test split and on unseen scenes: simulated plazas of
univ's size, of twice its size, moved 500 m away, moved to negative y, and the simulated walks
written as a lon/lat CSV placed in Nicosia (a custom dataset, projected by the builder). Each
scene is evaluated with `eval.normalisation=train` (positions read in univ's frame) and
`=target` (in the scene's own frame). Writes benchmarks/results/generalisation.{json,md}.
"""

import datetime
import json
import pathlib

from absl import app, flags

from benchmarks import machine
from trajcross_jax.data import geo, synthetic

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / 'benchmarks' / 'results'

_EPOCHS = flags.DEFINE_integer('epochs', 40, 'Training epochs of the univ model.')
_RUNS_DIR = flags.DEFINE_string('runs_dir', str(REPO / 'runs' / 'generalisation'), 'Workdir root.')

# (name, config file, overrides): each an unseen scene but the first.
SCENES = (
  ('univ test split (home)', 'default', ()),
  ('synthetic, univ-sized plaza at the origin', 'default', ('--config.data.name=synthetic',)),
  (
    'synthetic, plaza twice the size (32 x 28 m)',
    'default',
    ('--config.data.name=synthetic', '--config.data.plaza=(32.0,28.0)'),
  ),
  (
    'synthetic, plaza moved to (500, -300) m',
    'default',
    ('--config.data.name=synthetic', '--config.data.origin=(500.0,-300.0)'),
  ),
  (
    'synthetic, plaza moved to (-20, -40) m',
    'default',
    ('--config.data.name=synthetic', '--config.data.origin=(-20.0,-40.0)'),
  ),
  ('lon/lat CSV: simulated walks in Nicosia', 'custom', ()),
)
TOP_K = ('top@1', 'top@5', 'top@10')
NICOSIA = '+proj=tmerc +lat_0=35.17 +lon_0=33.36 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs'


def write_lonlat_csv(path: pathlib.Path) -> list[str]:
  """Simulated walks (a recording the model never saw) as lon/lat rows with ISO times.

  Returns the overrides that read them as a custom dataset.
  """
  tracks = synthetic.simulate_tracks(seed=11, num_tracks=500, source='nicosia')
  projection = geo.Projection('local', NICOSIA)
  start = datetime.datetime(2026, 5, 1, 8, tzinfo=datetime.UTC)
  rows = ['track,time,lon,lat']
  for track in tracks:
    lonlat = projection.inverse(track.xy - 8.0)
    for frame, (lon, lat) in zip(track.frames, lonlat, strict=True):
      moment = start + datetime.timedelta(seconds=frame * synthetic.DT / synthetic.FRAME_STEP)
      rows.append(f'{track.ped_id},{moment.isoformat()},{lon:.9f},{lat:.9f}')
  path.write_text('\n'.join(rows) + '\n')
  return [
    f'--config.data.files={path}',
    '--config.data.format=csv',
    '--config.data.resample=time',
    f'--config.data.time_step={synthetic.DT}',
    '--config.data.max_gap=1.0',
    '--config.data.test_size=2379',
  ]


def main(argv):
  del argv
  runs = pathlib.Path(_RUNS_DIR.value).absolute()
  workdir = runs / 'univ_model'
  runs.mkdir(parents=True, exist_ok=True)
  epochs = f'--config.train.num_epochs={_EPOCHS.value}'
  train_s = None
  if not (workdir / 'checkpoints').exists():
    train_s = machine.run(machine.main_command('default', workdir, '--mode=train', epochs))
  csv_overrides = write_lonlat_csv(runs / 'nicosia.csv')
  rows = []
  for name, config, overrides in SCENES:
    extra = list(overrides) + (csv_overrides if config == 'custom' else [])
    for frame in ('train', 'target'):
      machine.run(
        machine.main_command(
          config, workdir, '--mode=eval', epochs, *extra, f'--config.eval.normalisation={frame}'
        )
      )
      results = json.loads((workdir / 'eval' / 'results.json').read_text())
      rows.append(
        {
          'scene': name,
          'dataset': results['dataset'],
          'normalisation': frame,
          'frame': {k: results['normalisation'][k] for k in ('center', 'scale')},
          'traj2img': {k: results['traj2img'][k] for k in TOP_K},
          'img2traj': {k: results['img2traj'][k] for k in TOP_K},
          'num_test': results['num_test'],
        }
      )
  record = {
    'command': f'python -m benchmarks.generalisation --epochs {_EPOCHS.value}',
    'model': f'configs/default.py trained on univ for {_EPOCHS.value} epochs, seed 0',
    'train_s': train_s,
    'machine': machine.describe(),
    'rows': rows,
  }
  RESULTS.mkdir(parents=True, exist_ok=True)
  (RESULTS / 'generalisation.json').write_text(json.dumps(record, indent=2) + '\n')
  (RESULTS / 'generalisation.md').write_text(table(record))
  print(table(record))


def table(record) -> str:
  """The results as a markdown table, one row per scene and frame."""
  lines = [
    f'Model: {record["model"]}. Command: `{record["command"]}`.',
    '',
    '| scene | frame | traj→img top@1 / 5 / 10 | img→traj top@1 / 5 / 10 |',
    '| --- | --- | --- | --- |',
  ]
  for row in record['rows']:
    cells = [' / '.join(f'{row[d][k]:.1f}' for k in TOP_K) for d in ('traj2img', 'img2traj')]
    lines.append(f'| {row["scene"]} | {row["normalisation"]} | {cells[0]} | {cells[1]} |')
  return '\n'.join(lines) + '\n'


if __name__ == '__main__':
  app.run(main)
