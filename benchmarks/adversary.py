"""The adversary study (issue 15): does the modality game help, and in which form?

  python -m benchmarks.adversary                       # every setting, seed 0
  python -m benchmarks.adversary --seeds 0,1           # two seeds each
  python -m benchmarks.adversary --settings default,nogan --report_only

Each (setting, seed) trains configs/default.py's bi-encoder (no re-ranker) for --epochs on the
training split less a fifth of its pedestrians and scores it on those pedestrians
(`--config.data.validation_fraction=0.2 --config.eval.split=validation`): a choice made here
never looks at the test split (PROTOCOL.md section 5). Workdirs are RUNS_DIR/<setting>/seed<k>;
a finished one (eval/results.json) is skipped, an unfinished one resumes from its checkpoint.

Besides top@k, each run's metrics.jsonl says how the game went: the classifier's accuracy over
the last tenth of training, the step at which it first wins (accuracy >= 0.99, after the
encoders' warmup), and the spikes of the adversarial loss (a logged value above SPIKE_FACTOR
times the median of the SPIKE_WINDOW logged values before it, and above SPIKE_FLOOR; the first
SPIKE_WINDOW values are never spikes). Writes benchmarks/results/adversary.{json,md,png}; runs
in the JSON that are not in RUNS_DIR are kept, so the study can grow across machines and days.
"""

import json
import pathlib
import sys
import time

import matplotlib
import numpy as np
from absl import app, flags, logging

from benchmarks import machine, report

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / 'benchmarks' / 'results'
# name: (config under configs/, overrides, what it changes against the default game).
SETTINGS = {
  'default': ('default', (), "configs/default.py's game: constant lambda, classifier Adam"),
  'nogan': ('nogan', (), 'no modality classifier'),
  'dann': (
    'default',
    ('--config.train.adversarial_schedule=dann',),
    "lambda ramped by DANN's 2 / (1 + exp(-10 p)) - 1",
  ),
  'disc_lr_1e-4': (
    'default',
    ('--config.train.disc_learning_rate=1e-4',),
    'classifier learning rate 1e-4',
  ),
  'disc_cosine': (
    'default',
    ('--config.train.disc_schedule=cosine',),
    "classifier learning rate decayed to 0 with the encoders'",
  ),
  'smooth_0.2': (
    'default',
    ('--config.train.disc_label_smoothing=0.2',),
    "classifier's targets smoothed by 0.2",
  ),
  'penalty_1': (
    'default',
    ('--config.train.disc_gradient_penalty=1.0',),
    'gradient penalty on the classifier, weight 1',
  ),
  'small_disc': (
    'default',
    ('--config.model.disc_hidden=(64,)',),
    'classifier with one hidden layer of 64 (not 256, 256)',
  ),
  'weight_0.3': ('default', ('--config.train.adversarial_weight=0.3',), 'lambda 0.3'),
}
WIN_ACC = 0.99  # The classifier "wins" when its logged accuracy first reaches this.
SPIKE_FACTOR, SPIKE_WINDOW, SPIKE_FLOOR = 5.0, 10, 0.1

_SETTINGS = flags.DEFINE_list('settings', list(SETTINGS), f'Of {list(SETTINGS)}.')
_SEEDS = flags.DEFINE_list('seeds', ['0'], 'config.seed values; each seed is its own run.')
_EPOCHS = flags.DEFINE_integer('epochs', 40, 'Training epochs of every run.')
_RUNS_DIR = flags.DEFINE_string('runs_dir', str(REPO / 'runs' / 'adversary'), 'Workdirs root.')
_REPORT_ONLY = flags.DEFINE_bool('report_only', False, 'Only rewrite the results files.')


def command(setting: str, seed: int, workdir: pathlib.Path, epochs: int) -> list[str]:
  config, overrides, _ = SETTINGS[setting]
  seed_epochs = (f'--config.seed={seed}', f'--config.train.num_epochs={epochs}')
  return machine.main_command(config, workdir, *seed_epochs, *report.VALIDATION_FLAGS, *overrides)


def run_one(setting: str, seed: int) -> None:
  """Trains and evaluates one (setting, seed) unless it finished before."""
  workdir = pathlib.Path(_RUNS_DIR.value).absolute() / setting / f'seed{seed}'
  if (workdir / 'eval' / 'results.json').exists():
    epochs = report.run_budget(workdir)['epochs']
    if epochs != _EPOCHS.value:
      raise app.UsageError(
        f'{workdir} holds a run of {epochs} epochs, not --epochs={_EPOCHS.value}: '
        'pass another --runs_dir'
      )
    logging.info('%s seed %d: finished before, skipped', setting, seed)
    return
  machine.run(command(setting, seed, workdir, _EPOCHS.value))


def game(metrics: list[dict], warmup_steps: int = 0) -> dict:
  """How the modality game went, from a run's logged training metrics (not its evaluations).

  A win counts only after the encoders' warmup: the classifier separates the untrained
  encoders' embeddings at once, before the game has begun.
  """
  logged = [m for m in metrics if 'loss' in m]
  out = {'steps': logged[-1]['step'] if logged else 0}
  if not logged or 'disc_acc' not in logged[0]:
    return out  # nogan: no game.
  acc = [m['disc_acc'] for m in logged]
  adv = [m['adversarial'] for m in logged]
  tail = acc[-max(len(acc) // 10, 1) :]
  wins = [m['step'] for m in logged if m['disc_acc'] >= WIN_ACC and m['step'] > warmup_steps]
  spikes = [
    logged[i]['step']
    for i in range(SPIKE_WINDOW, len(adv))
    if adv[i] > SPIKE_FLOOR and adv[i] > SPIKE_FACTOR * np.median(adv[i - SPIKE_WINDOW : i])
  ]
  counted = len(adv) > SPIKE_WINDOW  # Too short a run to tell a spike from its start.
  return dict(
    out,
    final_disc_acc=sum(tail) / len(tail),
    first_win_step=wins[0] if wins else None,
    spikes=len(spikes) if counted else None,
    spike_steps=spikes,
    max_adversarial_after_win=max(
      (a for m, a in zip(logged, adv, strict=True) if wins and m['step'] > wins[0]), default=None
    ),
    # Four significant figures: a winning classifier's loss falls far below 1e-5.
    curve=[[m['step'], float(f'{m["adversarial"]:.4g}'), round(m['disc_acc'], 4)] for m in logged],
  )


def record(setting: str, workdir: pathlib.Path) -> dict:
  """One finished run: its validation results, its game, its command."""
  results = json.loads((workdir / 'eval' / 'results.json').read_text())
  lines = (workdir / 'metrics.jsonl').read_text().splitlines()
  metrics = [json.loads(line) for line in lines if line.strip()]
  seed = int(workdir.name.removeprefix('seed'))
  train = report.last_meta(workdir)['run_config']['train']
  epochs = train['num_epochs']
  evals = [m for m in metrics if 'wall_s' in m]  # The evaluations along training.
  return {
    'setting': setting,
    'seed': seed,
    'epochs': epochs,
    'command': ' '.join(command(setting, seed, workdir, epochs)[1:]),
    # Training seconds at the last evaluation (a resumed run's last leg only).
    'wall_s': evals[-1]['wall_s'] if evals else None,
    **{d: {k: results[d][k] for k in report.KS} for d in report.DIRECTIONS},
    'num_validation': results['num_test'],
    'game': game(metrics, train['warmup_steps']),
    # Validation top@1 at each evaluation during training: [epoch, traj->img, img->traj].
    'along_training': [
      [m['epoch'], m['eval_traj2img_top@1'], m['eval_img2traj_top@1']] for m in evals
    ],
  }


def summarise(records: list[dict]) -> dict:
  """report.summary's mean and std over a setting's seeds, and the same of the game's figures."""
  out = report.summary(records)
  for key in ('final_disc_acc', 'spikes'):
    values = [r['game'][key] for r in records if r['game'].get(key) is not None]
    if values:
      out[key] = {'mean': float(np.mean(values)), 'std': float(np.std(values))}
  return out


def _cell(m: dict, n: int, digits: int = 1) -> str:
  return f'{m["mean"]:.{digits}f}' + (f' ± {m["std"]:.{digits}f}' if n > 1 else '')


def markdown(summaries: dict[str, dict], records: list[dict]) -> str:
  """The study's table: validation top@k both ways and the game's figures, per setting."""
  lines = [
    '| setting | what changed | seeds | traj→img top@1 / 5 / 10 | img→traj top@1 / 5 / 10 | '
    'classifier accuracy, last tenth | first win (step) | loss spikes |',
    '| --- | --- | ---: | --- | --- | ---: | --- | ---: |',
  ]
  for name, s in summaries.items():
    n = len(s['seeds'])
    ours = [' / '.join(_cell(s[d][k], n) for k in report.KS) for d in report.DIRECTIONS]
    runs = [r for r in records if r['setting'] == name]
    wins = ', '.join(str(r['game'].get('first_win_step') or 'never') for r in runs)
    has_game = 'final_disc_acc' in s
    lines.append(
      f'| {name} | {SETTINGS[name][2]} | {n} | {ours[0]} | {ours[1]} | '
      + (
        f'{_cell(s["final_disc_acc"], n, 2)} | {wins} | {_cell(s["spikes"], n)} |'
        if has_game
        else '- | - | - |'
      )
    )
  return '\n'.join(lines)


def figure(summaries: dict[str, dict], records: list[dict], path: pathlib.Path) -> None:
  """Top@1 per setting (error bars: std over seeds) and, per setting, its lowest seed's game."""
  fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
  names = list(summaries)
  width = 0.4
  for i, d in enumerate(report.DIRECTIONS):
    means = [summaries[n][d]['top@1']['mean'] for n in names]
    stds = [summaries[n][d]['top@1']['std'] for n in names]
    x = [j + (i - 0.5) * width for j in range(len(names))]
    axes[0].bar(x, means, width, yerr=stds, capsize=2, label=d.replace('2', ' → '))
  axes[0].set_xticks(range(len(names)), names, rotation=35, ha='right', fontsize=8)
  axes[0].set_ylim(
    min(s[d]['top@1']['mean'] for s in summaries.values() for d in report.DIRECTIONS) - 5, None
  )
  axes[0].set_ylabel('validation top@1 (%)')
  axes[0].legend(fontsize=8)
  axes[0].grid(axis='y', alpha=0.3)
  for r in sorted(records, key=lambda r: (names.index(r['setting']), r['seed'])):
    curve = r['game'].get('curve')
    if not curve or r['seed'] != min(summaries[r['setting']]['seeds']):
      continue
    steps = [c[0] for c in curve]
    axes[1].plot(steps, [c[1] for c in curve], lw=0.9, label=r['setting'])
    axes[2].plot(steps, [c[2] for c in curve], lw=0.9, label=r['setting'])
  axes[1].set_yscale('log')
  axes[1].set_title('adversarial loss (lowest seed of each setting)')
  axes[2].set_title('classifier accuracy')
  for ax in axes[1:]:
    ax.set_xlabel('step')
    ax.grid(alpha=0.3)
  axes[2].legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def collect(runs_dir: pathlib.Path, previous: list[dict]) -> list[dict]:
  """Every finished run in runs_dir, plus the previous results' runs not found there."""
  found = {}
  for results in sorted(runs_dir.glob('*/seed*/eval/results.json')):
    workdir = results.parents[1]
    setting = workdir.parent.name
    if setting in SETTINGS:
      r = record(setting, workdir)
      found[setting, r['seed']] = r
  for r in previous:
    found.setdefault((r['setting'], r['seed']), r)
  order = list(SETTINGS)
  return [found[k] for k in sorted(found, key=lambda k: (order.index(k[0]), k[1]))]


def write(records: list[dict]) -> list[pathlib.Path]:
  """adversary.json (every run and each setting's summary), adversary.md and adversary.png."""
  epochs = sorted({r['epochs'] for r in records})
  if len(epochs) != 1:
    raise ValueError(f'runs of {epochs} epochs: the study compares settings at one budget')
  by_setting: dict[str, list[dict]] = {}
  for r in records:
    by_setting.setdefault(r['setting'], []).append(r)
  summaries = {n: summarise(rs) for n, rs in by_setting.items()}
  out = {
    'command': 'python -m benchmarks.adversary ' + ' '.join(sys.argv[1:]),
    'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'machine': machine.describe(),
    'epochs': epochs[0],
    'split': 'validation (a fifth of the training pedestrians held out)',
    'settings': {
      n: {'config': c, 'overrides': list(o), 'what': w} for n, (c, o, w) in SETTINGS.items()
    },
    'summaries': summaries,
    'runs': records,
  }
  paths = [RESULTS / 'adversary.json', RESULTS / 'adversary.md', RESULTS / 'adversary.png']
  paths[0].write_text(json.dumps(out, indent=1) + '\n')
  paths[1].write_text(
    f'Validation split, {epochs[0]} epochs, bi-encoder only (`python -m benchmarks.adversary`;'
    ' mean ± std over seeds):\n\n' + markdown(summaries, records) + '\n'
  )
  figure(summaries, records, paths[2])
  return paths


def main(argv):
  del argv
  unknown = set(_SETTINGS.value) - set(SETTINGS)
  if unknown:
    raise app.UsageError(f'unknown settings {sorted(unknown)}; known: {list(SETTINGS)}')
  if not _REPORT_ONLY.value:
    for seed in [int(s) for s in _SEEDS.value]:
      for setting in _SETTINGS.value:
        run_one(setting, seed)
  previous_file = RESULTS / 'adversary.json'
  previous = json.loads(previous_file.read_text())['runs'] if previous_file.exists() else []
  for path in write(collect(pathlib.Path(_RUNS_DIR.value), previous)):
    print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
