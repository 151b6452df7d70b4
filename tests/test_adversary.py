"""The adversary study's reading of a run: the game's figures, and results kept across runs."""

import json

import numpy as np
import pytest

from benchmarks import adversary
from trajcross_jax import checkpoint


def _logged(adv, acc):
  return [
    {'step': 20 * (i + 1), 'loss': 1.0, 'adversarial': a, 'disc_acc': c}
    for i, (a, c) in enumerate(zip(adv, acc, strict=True))
  ]


def test_game_finds_the_first_win_and_the_spikes():
  # 1.0 after 0.69s is above the floor but under 5x the median: no spike. After the win, 8.7
  # is far above both (a spike) and 0.06 is 6x the median of 0.01s but under the floor.
  adv = [0.69] * 11 + [1.0] + [0.01] * 12 + [8.7] + [0.01] * 11 + [0.06]
  acc = [0.5] * 12 + [1.0] * 12 + [0.31] + [1.0] * 12
  g = adversary.game(_logged(adv, acc) + [{'step': 900, 'epoch': 1, 'wall_s': 3.0}])
  assert g['first_win_step'] == 260
  # A win during the encoders' warmup is the untrained start, not the game.
  assert adversary.game(_logged(adv, acc), warmup_steps=300)['first_win_step'] == 320
  assert g['spike_steps'] == [500] and g['spikes'] == 1
  assert g['max_adversarial_after_win'] == 8.7
  assert g['final_disc_acc'] == 1.0
  assert g['steps'] == 740 and len(g['curve']) == 37  # The evaluation line is not a step.
  # A winning classifier's tiny losses keep their digits in the curve.
  assert adversary.game(_logged([1.234567e-7] * 2, [1.0] * 2))['curve'][0][1] == 1.235e-7


def test_a_run_too_short_to_tell_spikes_counts_none():
  g = adversary.game(_logged([0.69, 9.0, 0.69], [0.5, 0.5, 0.5]))
  assert g['spikes'] is None and g['first_win_step'] is None


def test_game_of_a_run_without_a_classifier_is_empty():
  g = adversary.game([{'step': 20, 'loss': 1.0, 'contrastive': 1.0}])
  assert g == {'steps': 20}


def _finished(workdir, top1, game_metrics, epochs=40):
  """A finished run's files as trajcross_jax.main writes them (results, metrics, checkpoint)."""
  (workdir / 'eval').mkdir(parents=True)
  cells = {'top@1': top1, 'top@5': 90.0, 'top@10': 95.0, 'mrr': 0.6}
  (workdir / 'eval' / 'results.json').write_text(
    json.dumps({'num_test': 7, 'traj2img': cells, 'img2traj': dict(cells, **{'top@1': top1 + 1})})
  )
  evals = {'step': 20, 'epoch': 1.0, 'wall_s': 12.0}
  evals.update({'eval_traj2img_top@1': top1, 'eval_img2traj_top@1': top1 + 1})
  lines = [*game_metrics, evals]
  (workdir / 'metrics.jsonl').write_text('\n'.join(json.dumps(m) for m in lines))
  train = {'batch_size': 4, 'num_epochs': epochs, 'warmup_steps': 0}
  meta = {'total_steps': 20, 'run_config': {'train': train}}
  checkpoint.save(checkpoint.manager(str(workdir)), 20, {'w': np.zeros(1)}, meta)


def test_collect_keeps_earlier_runs_and_prefers_local_ones(tmp_path):
  _finished(tmp_path / 'nogan' / 'seed1', 50.0, [{'step': 20, 'loss': 1.0, 'contrastive': 1.0}])
  old = {'setting': 'nogan', 'seed': 1, 'traj2img': {'top@1': 1.0}}
  other = {'setting': 'default', 'seed': 0, 'traj2img': {'top@1': 2.0}}
  runs = adversary.collect(tmp_path, [old, other])
  assert [(r['setting'], r['seed']) for r in runs] == [('default', 0), ('nogan', 1)]
  assert runs[1]['traj2img'] == {'top@1': 50.0, 'top@5': 90.0, 'top@10': 95.0}
  assert runs[1]['wall_s'] == 12.0 and runs[1]['num_validation'] == 7
  assert runs[1]['along_training'] == [[1.0, 50.0, 51.0]] and runs[1]['epochs'] == 40
  assert '--config.train.num_epochs=40' in runs[1]['command']


def test_the_report_tables_and_draws_settings_with_and_without_a_game(tmp_path, monkeypatch):
  monkeypatch.setattr(adversary, 'RESULTS', tmp_path / 'results')
  (tmp_path / 'results').mkdir()
  game = _logged([0.69] * 11 + [0.01], [0.5] * 11 + [1.0])
  for seed, top1 in ((0, 60.0), (1, 62.0)):
    _finished(tmp_path / 'runs' / 'default' / f'seed{seed}', top1, game)
  _finished(tmp_path / 'runs' / 'nogan' / 'seed0', 61.0, [{'step': 20, 'loss': 1.0}])
  paths = adversary.write(adversary.collect(tmp_path / 'runs', []))
  assert [p.name for p in paths] == ['adversary.json', 'adversary.md', 'adversary.png']
  assert paths[2].stat().st_size > 10_000
  table = paths[1].read_text()
  assert 'Validation split, 40 epochs' in table
  assert '| default |' in table and '| 2 | 61.0 ± 1.0 / 90.0 ± 0.0 / 95.0 ± 0.0 |' in table
  assert '| 1.00 ± 0.00 | 240, 240 | 0.0 ± 0.0 |' in table  # The last tenth: one log line.
  assert '| nogan | no modality classifier | 1 | 61.0 / 90.0 / 95.0 | 62.0 / 90.0 / 95.0 |' in table
  summaries = json.loads(paths[0].read_text())['summaries']
  assert summaries['default']['traj2img']['top@1'] == {'mean': 61.0, 'std': 1.0}


def test_runs_of_different_budgets_are_not_mixed(tmp_path):
  _finished(tmp_path / 'default' / 'seed0', 60.0, [{'step': 20, 'loss': 1.0}], epochs=40)
  _finished(tmp_path / 'nogan' / 'seed0', 60.0, [{'step': 20, 'loss': 1.0}], epochs=20)
  with pytest.raises(ValueError, match=r'runs of \[20, 40\] epochs'):
    adversary.write(adversary.collect(tmp_path, []))
