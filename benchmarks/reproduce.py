"""Trains and evaluates configs on the paper protocol and writes the results files.

  python -m benchmarks.reproduce                      # TRAJCROSS + Table II / Fig. 3 variants
  python -m benchmarks.reproduce --configs default    # the headline run only
  python -m benchmarks.reproduce --seeds 0,1,2        # several seeds
  python -m benchmarks.reproduce --table1             # Table I: the baselines and TRAJCROSS

Each (config, seed) runs `python -m trajcross_jax.main` in its own workdir
(RUNS_DIR/<config>/seed<k>); a run that finished before is skipped, and an unfinished one
resumes from its checkpoint, so a stopped reproduction continues where it stopped. A finished
run without --override also has its results.json and run_info.json copied to
benchmarks/results/runs/<config>/seed<k>/ (commit them), and a run found there is skipped too:
a table is built up across machines and days from the committed runs. Then the
results files of the suite (Table I with --table1; else Table II / Fig. 3 and, when the default
config ran at its own budget, the headline trajcross.json) are rewritten from every finished
run in RUNS_DIR, and the README's generated results section from the results files. Extra
`--override=config.x.y=v` flags go to every run (and are named under the tables).
"""

import json
import pathlib
import time

from absl import app, flags, logging

from benchmarks import machine, report

REPO = pathlib.Path(__file__).resolve().parents[1]
COMMITTED = REPO / 'benchmarks' / 'results' / 'runs'

VARIANTS = report.TABLE2_ROWS
BASELINES = tuple(f'baselines/{n}' for n in report.BASELINE_NAMES)

_CONFIGS = flags.DEFINE_list('configs', None, 'Configs (names under configs/, no .py).')
_SEEDS = flags.DEFINE_list('seeds', ['0'], 'config.seed values; each seed is its own run.')
_TABLE1 = flags.DEFINE_bool('table1', False, 'Run Table I: the six baselines and TRAJCROSS.')
_RUNS_DIR = flags.DEFINE_string('runs_dir', str(REPO / 'runs' / 'reproduce'), 'Workdirs root.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'tfds data_dir for every run.')
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'Directory with the three univ files.')
_OVERRIDES = flags.DEFINE_multi_string('override', [], 'config.x.y=v, passed to every run.')
_REPORT_ONLY = flags.DEFINE_bool('report_only', False, 'Only rewrite the results files.')
_WRITE_README = flags.DEFINE_bool('write_readme', True, "Rewrite the README's results section.")


def run_one(config: str, seed: int) -> pathlib.Path:
  """Trains and evaluates one (config, seed), unless it has finished before."""
  workdir = pathlib.Path(_RUNS_DIR.value).absolute() / config / f'seed{seed}'
  committed = COMMITTED / config / f'seed{seed}' / 'run_info.json'
  if (workdir / 'run_info.json').exists() or (committed.exists() and not _OVERRIDES.value):
    logging.info('%s seed %d: finished before, skipped', config, seed)
    return workdir
  cmd = machine.main_command(config, workdir, f'--config.seed={seed}')
  if _DATA_DIR.value:
    cmd.append(f'--config.data.data_dir={_DATA_DIR.value}')
  if _MANUAL_DIR.value:
    cmd.append(f'--config.data.manual_dir={_MANUAL_DIR.value}')
  cmd += [f'--{o}' for o in _OVERRIDES.value]
  wall_s = machine.run(cmd)
  info = {
    'config': config,
    'seed': seed,
    'command': ' '.join(cmd[1:]),
    'wall_s': wall_s,
    'budget': report.run_budget(workdir),
    'finished': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'machine': machine.describe(),
  }
  # Written last: its presence marks the run finished (a resumed run's wall time is its last leg).
  (workdir / 'run_info.json').write_text(json.dumps(info, indent=2) + '\n')
  if not _OVERRIDES.value:  # Overridden runs are experiments, not the tables' runs.
    logging.info('committed as %s', report.commit_run(workdir, info, COMMITTED))
  return workdir


def main(argv):
  del argv
  configs = _CONFIGS.value or (list(BASELINES) + ['default'] if _TABLE1.value else list(VARIANTS))
  seeds = [int(s) for s in _SEEDS.value]
  if not _REPORT_ONLY.value:
    for config in configs:
      if not (REPO / 'configs' / f'{config}.py').exists():
        raise app.UsageError(f'no config configs/{config}.py')
      for seed in seeds:
        run_one(config, seed)
  committed = None if _OVERRIDES.value else COMMITTED
  runs = report.load_runs(pathlib.Path(_RUNS_DIR.value), committed)
  written = []
  if _TABLE1.value:
    written += report.write_table1(runs)
  else:
    if any(n in runs for n in VARIANTS[1:]):
      written += report.write_table2(runs)
    # The headline is the default config at its own budget: never from overridden runs.
    if 'default' in runs and not _OVERRIDES.value:
      written += report.write_headline(runs)
  if _WRITE_README.value:
    written.append(report.update_readme())
  for path in written:
    print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
