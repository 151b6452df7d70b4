"""The adversary study's reading of a run: the game's figures, and results kept across runs."""

import json

import pytest
from absl import flags

from benchmarks import adversary


@pytest.fixture(autouse=True)
def _flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS(['adversary'])


def _logged(adv, acc):
  return [
    {'step': 20 * (i + 1), 'loss': 1.0, 'adversarial': a, 'disc_acc': c}
    for i, (a, c) in enumerate(zip(adv, acc, strict=True))
  ]


def test_game_finds_the_first_win_and_the_spikes():
  adv = [0.69] * 12 + [0.01] * 12 + [8.7] + [0.01] * 12 + [0.04]
  acc = [0.5] * 12 + [1.0] * 12 + [0.31] + [1.0] * 13
  g = adversary.game(_logged(adv, acc) + [{'step': 760, 'epoch': 1, 'wall_s': 3.0}])
  assert g['first_win_step'] == 260
  # 8.7 is far above its window's median; 0.04 is 4x of 0.01 (< 5x) and under the floor.
  assert g['spike_steps'] == [500] and g['spikes'] == 1
  assert g['max_adversarial_after_win'] == 8.7
  assert g['final_disc_acc'] == 1.0
  assert g['steps'] == 760 and len(g['curve']) == 38


def test_game_of_a_run_without_a_classifier_is_empty():
  g = adversary.game([{'step': 20, 'loss': 1.0, 'contrastive': 1.0}])
  assert g == {'steps': 20}


def test_collect_keeps_earlier_runs_and_prefers_local_ones(tmp_path):
  workdir = tmp_path / 'nogan' / 'seed1'
  (workdir / 'eval').mkdir(parents=True)
  cells = {'top@1': 50.0, 'top@5': 90.0, 'top@10': 95.0, 'mrr': 0.6}
  (workdir / 'eval' / 'results.json').write_text(
    json.dumps({'num_test': 7, 'traj2img': cells, 'img2traj': cells})
  )
  lines = [{'step': 20, 'loss': 1.0, 'contrastive': 1.0}]
  lines.append(
    {
      'step': 20,
      'epoch': 1.0,
      'wall_s': 12.0,
      'eval_traj2img_top@1': 50.0,
      'eval_img2traj_top@1': 50.0,
    }
  )
  (workdir / 'metrics.jsonl').write_text('\n'.join(json.dumps(m) for m in lines))
  old = {'setting': 'nogan', 'seed': 1, 'traj2img': {'top@1': 1.0}}
  other = {'setting': 'default', 'seed': 0, 'traj2img': {'top@1': 2.0}}
  runs = adversary.collect(tmp_path, [old, other])
  assert [(r['setting'], r['seed']) for r in runs] == [('default', 0), ('nogan', 1)]
  assert runs[1]['traj2img'] == {'top@1': 50.0, 'top@5': 90.0, 'top@10': 95.0}
  assert runs[1]['wall_s'] == 12.0 and runs[1]['num_validation'] == 7
  assert runs[1]['along_training'] == [[1.0, 50.0, 50.0]]
