"""Table I's baselines tuned on the validation split at the equal budget (issue 15).

  python -m benchmarks.baseline_tuning                        # every baseline's settings
  python -m benchmarks.baseline_tuning --baselines acmr,cca   # some of them
  python -m benchmarks.baseline_tuning --report_only          # only rewrite the results

Each (baseline, setting) trains configs/baselines/<baseline>.py with the setting's overrides,
seed 0, at the config's own budget (60 epochs, the one every row of Table I trains for), on the
training split less a fifth of its pedestrians, and scores it on those pedestrians: a choice
made here never looks at the test split (PROTOCOL.md section 5). The setting with the best
mean of top@1 over the two directions is the baseline's choice (`chosen` in the JSON); its
config file should hold it (`configured` in the JSON: the setting the config holds, if any;
a tick in the table's `config` column). Workdirs
are RUNS_DIR/<baseline>/<setting>; a finished one is skipped. Writes
benchmarks/results/baseline_tuning.{json,md}; runs in the JSON that are not in RUNS_DIR are
kept, so the sweep can grow across machines and days.

MoCo's key window was swept before this driver existed (tuning.md, "MoCo's key window").
"""

import ast
import importlib
import json
import math
import pathlib
import sys
import time

from absl import app, flags, logging

from benchmarks import machine, report

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / 'benchmarks' / 'results'
VALIDATION = (*report.VALIDATION_FLAGS, '--config.seed=0')


def _grid(fields: dict[str, str], settings: dict[str, dict]) -> dict[str, tuple[str, ...]]:
  """Settings as override flags, each naming every swept field: `fields` (config path: value)
  overridden by the setting's own, so that a setting means the same after its config changes."""
  return {
    name: tuple(f'--config.{path}={value}' for path, value in {**fields, **own}.items())
    for name, own in settings.items()
  }


_LR = 'train.learning_rate'
# The rates around the 1e-3 every gradient baseline was configured with before it was tuned.
_RATES = {f'lr_{r}': {_LR: r} for r in ('1e-3', '3e-3', '3e-4')}

# baseline: {setting: overrides of configs/baselines/<baseline>.py}. Each baseline's first
# argument holds its swept fields as configured when the sweep began.
SETTINGS: dict[str, dict[str, tuple[str, ...]]] = {
  'cca': _grid(
    {'model.image_pool': '4', 'model.cca_reg': '1e-2', 'model.cca_score': 'gaussian'},
    {
      'reg_1e-3': {'model.cca_reg': '1e-3'},
      'reg_1e-2': {},
      'reg_1e-1': {'model.cca_reg': '1e-1'},
      'reg_3e-1': {'model.cca_reg': '3e-1'},
      'reg_1': {'model.cca_reg': '1.0'},
      'pool_2': {'model.image_pool': '2'},
      'pool_8': {'model.image_pool': '8'},
      'pool_8_reg_1e-1': {'model.image_pool': '8', 'model.cca_reg': '1e-1'},
      'pool_16': {'model.image_pool': '16'},
      'cosine': {'model.cca_score': 'cosine'},
    },
  ),
  'acmr': _grid(
    {_LR: '1e-3', 'train.adversarial_weight': '1.0', 'model.image_pool': '2'},
    {
      **_RATES,
      'adv_0.3': {'train.adversarial_weight': '0.3'},
      'adv_0.1': {'train.adversarial_weight': '0.1'},
      'adv_0.03': {'train.adversarial_weight': '0.03'},
      'adv_0.01': {'train.adversarial_weight': '0.01'},
      'adv_0': {'train.adversarial_weight': '0.0'},
      'adv_0.03_lr_3e-3': {'train.adversarial_weight': '0.03', _LR: '3e-3'},
      'adv_0.03_lr_1e-2': {'train.adversarial_weight': '0.03', _LR: '1e-2'},
      'pool_4': {'model.image_pool': '4'},
      'decay_1e-2': {'train.weight_decay': '1e-2'},
    },
  ),
  # MoCo's key window was chosen before it (tuning.md, "MoCo's key window"); its rate and its
  # queue's length here. The queue stays under an epoch (7,936 training pairs here), so that it
  # seldom holds a pair's own earlier key as a negative.
  'moco': _grid(
    {_LR: '1e-3', 'model.moco_queue_size': '4096', 'train.moco_key_window': '0.05'},
    {
      'lr_1e-3': {},
      'lr_3e-3': {_LR: '3e-3'},
      'queue_1024': {'model.moco_queue_size': '1024'},
      'queue_6144': {'model.moco_queue_size': '6144'},
    },
  ),
  # DBRLM's runs take 12 min each here: 3e-4 was not run once 3e-3 had beaten 1e-3.
  'dbrlm': _grid({_LR: '1e-3'}, {n: f for n, f in _RATES.items() if n != 'lr_3e-4'}),
  'corr_ae': _grid(
    {_LR: '1e-3', 'train.corr_alpha': '0.5', 'model.image_pool': '2'},
    {
      **_RATES,
      'alpha_0.8': {'train.corr_alpha': '0.8'},
      'alpha_0.95': {'train.corr_alpha': '0.95'},
      'pool_4': {'model.image_pool': '4'},
      'pool_8': {'model.image_pool': '8'},
      'pool_4_alpha_0.95': {'model.image_pool': '4', 'train.corr_alpha': '0.95'},
      'pool_16': {'model.image_pool': '16'},
      'pool_8_alpha_0.95': {'model.image_pool': '8', 'train.corr_alpha': '0.95'},
    },
  ),
  'corr_cross_ae': _grid(
    {_LR: '1e-3', 'train.corr_alpha': '0.5', 'model.image_pool': '2'},
    {
      **_RATES,
      'lr_1e-2': {_LR: '1e-2'},
      'lr_3e-3_pool_4': {_LR: '3e-3', 'model.image_pool': '4'},
      'lr_3e-3_pool_8': {_LR: '3e-3', 'model.image_pool': '8'},
      'lr_3e-3_alpha_0.8': {_LR: '3e-3', 'train.corr_alpha': '0.8'},
    },
  ),
}


def command(baseline: str, setting: str, workdir: pathlib.Path | str) -> list[str]:
  """The `trajcross_jax.main` command line of one (baseline, setting)."""
  overrides = SETTINGS[baseline][setting]
  return machine.main_command(f'baselines/{baseline}', workdir, *VALIDATION, *overrides)


def _same(configured, flag_value: str) -> bool:
  try:
    value = ast.literal_eval(flag_value)
  except (ValueError, SyntaxError):
    value = flag_value  # A bare string, as absl's config flags take it.
  if isinstance(value, int | float) and isinstance(configured, int | float):
    return math.isclose(configured, value)
  return configured == value


def holds(baseline: str, setting: str) -> bool:
  """Whether configs/baselines/<baseline>.py, as it is now, has every field the setting sets."""
  config = importlib.import_module(f'configs.baselines.{baseline}').get_config()
  for flag in SETTINGS[baseline][setting]:
    path, value = flag.removeprefix('--config.').split('=', 1)
    node = config
    for part in path.split('.'):
      node = node[part]
    if not _same(node, value):
      return False
  return True


def configured(baseline: str) -> str | None:
  """The setting of `baseline` that its config holds now (None when it holds none)."""
  return next((s for s in SETTINGS[baseline] if holds(baseline, s)), None)


def record(baseline: str, setting: str, workdir: pathlib.Path) -> dict:
  """One finished run: its validation top@k, budget and command."""
  results = json.loads((workdir / 'eval' / 'results.json').read_text())
  return {
    'baseline': baseline,
    'setting': setting,
    'budget': report.run_budget(workdir),
    'command': ' '.join(command(baseline, setting, workdir)[1:]),
    **{d: {k: results[d][k] for k in report.KS} for d in report.DIRECTIONS},
    'num_validation': results['num_test'],
  }


def score(r: dict) -> float:
  """What a setting is chosen by: the mean of top@1 over the two directions."""
  return sum(r[d]['top@1'] for d in report.DIRECTIONS) / len(report.DIRECTIONS)


def choose(records: list[dict]) -> dict[str, str]:
  """Each baseline's best setting by `score` (the first listed one on a tie)."""
  best: dict[str, dict] = {}
  for r in records:
    if r['baseline'] not in best or score(r) > score(best[r['baseline']]):
      best[r['baseline']] = r
  return {b: r['setting'] for b, r in best.items()}


def collect(runs_dir: pathlib.Path, previous: list[dict]) -> list[dict]:
  """Every finished run in runs_dir, then the previous results' runs not found there."""
  found = {}
  for baseline, settings in SETTINGS.items():
    for setting in settings:
      workdir = runs_dir / baseline / setting
      if (workdir / 'eval' / 'results.json').exists():
        found[baseline, setting] = record(baseline, setting, workdir)
  for r in previous:
    if r['setting'] in SETTINGS.get(r['baseline'], {}):
      found.setdefault((r['baseline'], r['setting']), r)
  order = [(b, s) for b, settings in SETTINGS.items() for s in settings]
  return [found[k] for k in order if k in found]


def markdown(records: list[dict], chosen: dict[str, str], held: dict[str, str | None]) -> str:
  """The sweep's table: validation top@k both ways, the choice in bold, a tick on the setting
  each config holds now."""
  lines = [
    '| baseline | setting | overrides | traj→img top@1 / 5 / 10 | img→traj top@1 / 5 / 10 '
    '| config |',
    '| --- | --- | --- | --- | --- | :---: |',
  ]
  for r in records:
    cells = [' / '.join(f'{r[d][k]:.1f}' for k in report.KS) for d in report.DIRECTIONS]
    if chosen.get(r['baseline']) == r['setting']:
      cells = [f'**{c}**' for c in cells]
    overrides = ' '.join(SETTINGS[r['baseline']][r['setting']])
    tick = '✓' if held.get(r['baseline']) == r['setting'] else ''
    lines.append(
      f'| {r["baseline"]} | {r["setting"]} | `{overrides}` | {cells[0]} | {cells[1]} | {tick} |'
    )
  return '\n'.join(lines)


def write(records: list[dict]) -> list[pathlib.Path]:
  """baseline_tuning.json (every run and each baseline's choice) and baseline_tuning.md."""
  # Closed-form fits (CCA) read the split once; every trained run must share one budget.
  budgets = {
    json.dumps(r['budget'], sort_keys=True) for r in records if not r['budget'].get('closed_form')
  }
  if len(budgets) > 1:
    raise ValueError(f'runs at budgets {sorted(budgets)}: the sweep compares at one budget')
  chosen = choose(records)
  held = {b: configured(b) for b in chosen}
  out = {
    'command': 'python -m benchmarks.baseline_tuning ' + ' '.join(sys.argv[1:]),
    'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'machine': machine.describe(),
    'split': 'validation (a fifth of the training pedestrians held out), seed 0',
    'choice_rule': 'best mean of top@1 over the two directions',
    'settings': {b: {s: list(o) for s, o in settings.items()} for b, settings in SETTINGS.items()},
    'chosen': chosen,
    'configured': held,
    'runs': records,
  }
  paths = [RESULTS / 'baseline_tuning.json', RESULTS / 'baseline_tuning.md']
  paths[0].write_text(json.dumps(out, indent=1) + '\n')
  paths[1].write_text(
    "Validation split, seed 0, each baseline at its config's budget "
    '(`python -m benchmarks.baseline_tuning`); the chosen setting in bold, a tick on the '
    'setting each config holds now:\n\n' + markdown(records, chosen, held) + '\n'
  )
  return paths


def run_one(baseline: str, setting: str, runs_dir: pathlib.Path) -> None:
  """Trains and evaluates one (baseline, setting) unless it finished before."""
  workdir = runs_dir / baseline / setting
  if (workdir / 'eval' / 'results.json').exists():
    logging.info('%s %s: finished before, skipped', baseline, setting)
    return
  machine.run(command(baseline, setting, workdir))


def define_flags() -> None:
  """The command line's flags, defined only when run as a script: tests import this module
  beside benchmarks.adversary, whose flags share these names."""
  flags.DEFINE_list('baselines', list(SETTINGS), f'Of {list(SETTINGS)}.')
  flags.DEFINE_string('runs_dir', str(REPO / 'runs' / 'tune'), 'Workdirs root.')
  flags.DEFINE_bool('report_only', False, 'Only rewrite the results files.')


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  unknown = set(FLAGS.baselines) - set(SETTINGS)
  if unknown:
    raise app.UsageError(f'unknown baselines {sorted(unknown)}; known: {list(SETTINGS)}')
  runs_dir = pathlib.Path(FLAGS.runs_dir).absolute()
  if not FLAGS.report_only:
    for baseline in FLAGS.baselines:
      for setting in SETTINGS[baseline]:
        run_one(baseline, setting, runs_dir)
  previous_file = RESULTS / 'baseline_tuning.json'
  previous = json.loads(previous_file.read_text())['runs'] if previous_file.exists() else []
  for path in write(collect(runs_dir, previous)):
    print(f'wrote {path}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
