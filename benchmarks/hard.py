"""The hard protocol (README "The hard protocol"): the shortcut, the learned model, robustness.

  python -m benchmarks.hard [--clean_workdir=runs/reproduce/default/seed0] [--runs_dir=runs/hard]
  python -m benchmarks.hard --only=oracles,univ_hard    # these groups, the other rows kept

1. configs/default.py trained on `univ_hard` (RUNS_DIR/univ_hard/seed0, with HARD_TRAINING),
   and the mixed model (RUNS_DIR/univ_hard+clean<F>/seed0, MIXED_TRAINING: a share of its
   training pairs drawn clean), each unless it has finished before (its eval/results.json
   exists); --clean_workdir is the same config trained on `univ`.
2. The protocols: `univ`, `univ_hard`, and `univ` with each of univ_hard's rules alone (e.g.
   'univ-noise_m0.2'), so that each rule's effect is measured by itself.
3. On each protocol: the noise oracle (the ceiling of the noise rules, trajcross_jax/
   noise_oracle.py), the re-draw reference (analysis by synthesis, trajcross_jax/
   render_reference.py) and the clean model, the bi-encoder and its two stages
   (--config.eval.results: the runs' own results files stay as they are); the hard and the
   mixed model on `univ` and `univ_hard`; the oracle also at the noise sizes univ_hard first
   had (FIRST_SIZES); on `univ_hard` also the dots oracle, which knows each image's resampled
   dots but not their times (noise_oracle.dot_scores). Each measurement is kept in RUNS_DIR
   and not repeated.
4. benchmarks/results/hard.json (`rows`: protocol, method, trained_on, traj2img / img2traj
   top@1/5/10), hard.md, and hard_preview.png (pairs of univ_hard's test split).
"""

import dataclasses
import json
import pathlib
import shutil
import tempfile
import time

from absl import app, flags

from benchmarks import machine
from benchmarks import render_reference as reference_lib
from trajcross_jax import noise_oracle
from trajcross_jax.data import builder as builder_lib
from trajcross_jax.data import hard as hard_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / 'benchmarks' / 'results'
# (dataset, config.data.hard fields): univ, univ_hard, and univ with each hard rule alone.
PROTOCOLS = (
  ('univ', {}),
  ('univ_hard', {}),
  *(
    ('univ', {k: v})
    for k, v in dataclasses.asdict(hard_lib.HARD).items()
    if v != getattr(hard_lib.PAPER, k)
  ),
)
# univ_hard's first noise sizes (trajcross_jax 1.1.0 datasets), where the oracle is measured too.
FIRST_SIZES = (('univ', {'noise_m': 0.2, 'drift_m': 0.5}),)
TOP_K = ('top@1', 'top@5', 'top@10')
# Where the dots oracle (noise_oracle.dot_scores: the images' resampled dots known, their times
# not) is measured: the protocol whose images are resampled and whose trajectories are noisy.
DOTS_PROTOCOLS = (('univ_hard', {}),)
ORACLES = ('noise_oracle', 'dots_oracle')
# The hard model's overrides of configs/default.py, each chosen on the validation split
# (benchmarks/results/tuning.md, "The hard protocol" and the sections after it): its re-ranker
# trains on pairs drawn afresh each epoch, for 12 epochs, sees the trajectory's ends in
# channels of their own, reads its feature maps along the trajectory (point_features), and
# orders its head with the bi-encoder's score too.
REDRAWN = ('--config.rerank.redraw_images=True', '--config.rerank.num_epochs=12')
HARD_TRAINING = REDRAWN + (
  '--config.rerank.endpoint_width=3.0',
  '--config.rerank.bi_weight=16',
  '--config.rerank.point_features=32',
)
# The mixed model: its re-ranker as the hard model's was before the ends and the weight (it
# was not trained again), with this share of both stages' training pairs drawn by the paper
# protocol's rules (train.clean_fraction, rerank.clean_fraction), chosen on the validation
# split (tuning.md, "A clean share").
CLEAN_FRACTION = 0.25
MIXED_TRAINING = REDRAWN + tuple(
  f'--config.{stage}.clean_fraction={CLEAN_FRACTION}' for stage in ('train', 'rerank')
)
MIXED = f'univ_hard+clean{CLEAN_FRACTION}'  # Its `trained_on`.
# hard.json's rows by what measured them: the oracles, the re-draw reference, and each model
# (by `trained_on`); `--only` measures some and keeps the others.
GROUPS = ('oracles', 'reference', 'univ', 'univ_hard', MIXED)

_CLEAN = flags.DEFINE_string(
  'clean_workdir',
  str(REPO / 'runs' / 'reproduce' / 'default' / 'seed0'),
  'A configs/default.py run on univ (benchmarks.reproduce --configs default).',
)
_RUNS_DIR = flags.DEFINE_string('runs_dir', str(REPO / 'runs' / 'hard'), 'Work root.')
_ONLY = flags.DEFINE_list(
  'only',
  [],
  f'Measure only these groups of rows, of {list(GROUPS)}, and keep the other rows of the '
  'existing hard.json (default: all).',
)


def _main(workdir: pathlib.Path, *args: str) -> None:
  """configs/default.py's entry point in `workdir` with further flags."""
  machine.run(machine.main_command('default', workdir, *args))


def _name(dataset: str, hard: dict) -> str:
  """The built config's name (the builder's naming): 'univ', 'univ-noise_m0.2', ..."""
  rules = dataclasses.replace(builder_lib.registered(dataset).hard, **hard)
  return builder_lib.builder_config(dataset, hard=rules).name


def reference_rows(runs: pathlib.Path, protocols) -> list[dict]:
  """The re-draw reference on each protocol (each measured once, then read back)."""
  rows = []
  for dataset, hard in protocols:
    out = runs / 'reference' / f'{_name(dataset, hard)}.json'
    if not out.exists():
      out.parent.mkdir(parents=True, exist_ok=True)
      out.write_text(json.dumps(reference_lib.row(dataset, hard), indent=2))
    rows.append(json.loads(out.read_text()))
  return rows


def oracle_rows(runs: pathlib.Path, protocols, dots: bool = False) -> list[dict]:
  """The noise oracle (with `dots`, the dots oracle) on each protocol (each measured once, then
  read back)."""
  rows = []
  for dataset, hard in protocols:
    out = runs / ('dots_oracle' if dots else 'oracle') / f'{_name(dataset, hard)}.json'
    if not out.exists():
      config = reference_lib.protocol_config(dataset, hard)
      results = noise_oracle.split_results(config, dots=dots)
      out.parent.mkdir(parents=True, exist_ok=True)
      out.write_text(
        json.dumps(
          {
            'protocol': results['dataset'].split('/')[1],
            'method': results['method'],
            'trained_on': None,
            'num_test': results['num_test'],
            **{d: {k: results[d][k] for k in TOP_K} for d in ('traj2img', 'img2traj')},
            'seconds': results['seconds'],
          },
          indent=2,
        )
      )
    rows.append(json.loads(out.read_text()))
  return rows


def model_rows(workdir: pathlib.Path, trained_on: str, runs: pathlib.Path, protocols) -> list[dict]:
  """The model of `workdir` on each protocol: the bi-encoder, and its two stages."""
  rows = []
  for dataset, hard in protocols:
    out = runs / 'eval' / f'{trained_on}-on-{_name(dataset, hard)}.json'
    if not out.exists():
      out.parent.mkdir(parents=True, exist_ok=True)
      _main(
        workdir,
        '--mode=eval',
        f'--config.data.name={dataset}',
        *(f'--config.data.hard.{k}={v}' for k, v in hard.items()),
        f'--config.eval.results={out}',
      )
    results = json.loads(out.read_text())
    protocol = results['dataset'].split('/')[1]  # trajcross/<config>/<version>
    stages = [('trajcross', results)]
    if 'reranked' in results:
      stages.append(('trajcross+rerank', results['reranked']))
    for method, r in stages:
      rows.append(
        {
          'protocol': protocol,
          'method': method,
          'trained_on': trained_on,
          'num_test': results['num_test'],
          'step': results['step'],
          **{d: {k: r[d][k] for k in TOP_K} for d in ('traj2img', 'img2traj')},
        }
      )
  return rows


def preview(path: pathlib.Path) -> None:
  """16 pairs of univ_hard's test split: each noisy trajectory over its image."""
  from configs import default
  from trajcross_jax.data import preview as preview_lib

  config = default.get_config()
  config.data.name = 'univ_hard'
  with tempfile.TemporaryDirectory() as tmp:
    shutil.copy(preview_lib.write_preview(config.data, tmp, 'test'), path)


def table(record: dict) -> str:
  lines = [
    f"Command: `{record['command']}`. Top@1 / 5 / 10 (%) on each protocol's test split "
    '(2,379 pairs); `trained on` names the dataset a model trained on.',
    '',
    '| protocol | method | trained on | traj->img | img->traj |',
    '| --- | --- | --- | --- | --- |',
  ]
  for r in record['rows']:
    cells = [' / '.join(f'{r[d][k]:.1f}' for k in TOP_K) for d in ('traj2img', 'img2traj')]
    lines.append(
      f'| {r["protocol"]} | {r["method"]} | {r["trained_on"] or "-"} | {cells[0]} | {cells[1]} |'
    )
  return '\n'.join(lines) + '\n'


def group(row: dict) -> str:
  """Which of GROUPS a row of hard.json belongs to."""
  if row['method'] in ORACLES:
    return 'oracles'
  if row['method'] == 'render_reference':
    return 'reference'
  return row['trained_on']


def main(argv):
  del argv
  unknown = set(_ONLY.value) - set(GROUPS)
  if unknown:
    raise app.UsageError(f'--only: unknown groups {sorted(unknown)}; known: {list(GROUPS)}')
  wanted = set(_ONLY.value or GROUPS)
  runs = pathlib.Path(_RUNS_DIR.value).absolute()
  hard_workdir = runs / 'univ_hard' / 'seed0'
  mixed_workdir = runs / MIXED / 'seed0'
  for name, workdir, training in (
    ('univ_hard', hard_workdir, HARD_TRAINING),
    (MIXED, mixed_workdir, MIXED_TRAINING),
  ):
    if name in wanted and not (workdir / 'eval' / 'results.json').exists():  # A run's end.
      _main(workdir, '--config.data.name=univ_hard', *training)
  rows = []
  if 'oracles' in wanted:
    rows += oracle_rows(runs, PROTOCOLS + FIRST_SIZES) + oracle_rows(runs, DOTS_PROTOCOLS, True)
  if 'reference' in wanted:
    rows += reference_rows(runs, PROTOCOLS)
  if 'univ' in wanted:
    rows += model_rows(pathlib.Path(_CLEAN.value).absolute(), 'univ', runs, PROTOCOLS)
  if 'univ_hard' in wanted:
    rows += model_rows(hard_workdir, 'univ_hard', runs, PROTOCOLS[:2])
  if MIXED in wanted:
    rows += model_rows(mixed_workdir, MIXED, runs, PROTOCOLS[:2])
  record = {
    'command': 'python -m benchmarks.hard',
    'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'machine': machine.describe(),
    'models': {'univ': _CLEAN.value, 'univ_hard': str(hard_workdir), MIXED: str(mixed_workdir)},
    'hard_training': list(HARD_TRAINING),
    'mixed_training': list(MIXED_TRAINING),
  }
  dates = {g: record['date'] for g in GROUPS}
  if wanted != set(GROUPS):  # The other groups' rows, and their dates, as they were.
    before = json.loads((RESULTS / 'hard.json').read_text())
    kept = [r for r in before['rows'] if group(r) not in wanted]
    rows = sorted(kept + rows, key=lambda r: GROUPS.index(group(r)))
    dates = dict(before.get('dates') or {g: before['date'] for g in GROUPS})
    dates.update({g: record['date'] for g in wanted})
    record['command'] += f' --only={",".join(g for g in GROUPS if g in wanted)}'
  write(dict(record, dates=dates, rows=rows))
  if wanted == set(GROUPS):
    preview(RESULTS / 'hard_preview.png')


def write(record: dict) -> None:
  """hard.json and hard.md, and the table printed."""
  RESULTS.mkdir(parents=True, exist_ok=True)
  (RESULTS / 'hard.json').write_text(json.dumps(record, indent=2) + '\n')
  (RESULTS / 'hard.md').write_text(table(record))
  print(table(record))


if __name__ == '__main__':
  app.run(main)
