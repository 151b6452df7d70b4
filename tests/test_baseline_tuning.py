"""The baselines' validation sweep: its commands, its choice, and results kept across runs."""

import json

import numpy as np
import pytest

from benchmarks import baseline_tuning
from trajcross_jax import checkpoint


def _finished(workdir, t2i, i2t, epochs=60, closed_form=False):
  """A finished run's files as trajcross_jax.main writes them (results and last checkpoint)."""
  (workdir / 'eval').mkdir(parents=True)
  cells = {'top@5': 90.0, 'top@10': 95.0, 'mrr': 0.6}
  results = {'num_test': 7, 'traj2img': dict(cells, **{'top@1': t2i})}
  results['img2traj'] = dict(cells, **{'top@1': i2t})
  (workdir / 'eval' / 'results.json').write_text(json.dumps(results))
  meta = {'total_steps': 20, 'run_config': {'train': {'batch_size': 4, 'num_epochs': epochs}}}
  if closed_form:
    meta['data_position'] = {'closed_form': True}
  checkpoint.save(checkpoint.manager(str(workdir)), 20, {'w': np.zeros(1)}, meta)


def test_every_command_scores_the_validation_split_of_a_baseline_config():
  for baseline, settings in baseline_tuning.SETTINGS.items():
    for setting, overrides in settings.items():
      cmd = baseline_tuning.command(baseline, setting, '/w')
      assert f'--config=configs/baselines/{baseline}.py' in cmd
      assert '--config.eval.split=validation' in cmd and '--config.seed=0' in cmd
      assert cmd[-len(overrides) :] == list(overrides)
      assert not any('num_epochs' in c for c in cmd)  # The config's own budget, Table I's.
  # A setting names each swept field, so a later change of the config does not change it.
  acmr = baseline_tuning.SETTINGS['acmr']
  assert '--config.train.adversarial_weight=1.0' in acmr['lr_3e-4']
  assert acmr['adv_0.03_lr_3e-3'] == (
    '--config.train.learning_rate=3e-3',
    '--config.train.adversarial_weight=0.03',
    '--config.model.image_pool=2',
  )


def test_the_choice_is_the_best_mean_top1_and_a_tie_keeps_the_first():
  runs = [
    {'baseline': 'acmr', 'setting': 'a', 'traj2img': {'top@1': 40.0}, 'img2traj': {'top@1': 10.0}},
    {'baseline': 'acmr', 'setting': 'b', 'traj2img': {'top@1': 20.0}, 'img2traj': {'top@1': 31.0}},
    {'baseline': 'cca', 'setting': 'x', 'traj2img': {'top@1': 5.0}, 'img2traj': {'top@1': 5.0}},
    {'baseline': 'cca', 'setting': 'y', 'traj2img': {'top@1': 6.0}, 'img2traj': {'top@1': 4.0}},
  ]
  assert baseline_tuning.choose(runs) == {'acmr': 'b', 'cca': 'x'}


def test_collect_keeps_earlier_runs_prefers_local_ones_and_drops_unknown_settings(tmp_path):
  _finished(tmp_path / 'acmr' / 'lr_3e-3', 50.0, 52.0)
  old = {'baseline': 'acmr', 'setting': 'lr_3e-3', 'traj2img': {'top@1': 1.0}}
  earlier = {'baseline': 'acmr', 'setting': 'lr_1e-3', 'traj2img': {'top@1': 2.0}}
  gone = {'baseline': 'acmr', 'setting': 'lr_9', 'traj2img': {'top@1': 3.0}}
  runs = baseline_tuning.collect(tmp_path, [old, earlier, gone])
  assert [r['setting'] for r in runs] == ['lr_1e-3', 'lr_3e-3']  # SETTINGS' order.
  assert runs[1]['traj2img'] == {'top@1': 50.0, 'top@5': 90.0, 'top@10': 95.0}
  assert runs[1]['budget'] == {'rule': 'training pairs seen', 'pairs': 80, 'epochs': 60}
  assert '--config.train.learning_rate=3e-3' in runs[1]['command'].split()


def test_the_report_bolds_each_choice_and_keeps_closed_form_fits_beside_trained_runs(
  tmp_path, monkeypatch
):
  monkeypatch.setattr(baseline_tuning, 'RESULTS', tmp_path / 'results')
  (tmp_path / 'results').mkdir()
  _finished(tmp_path / 'runs' / 'cca' / 'pool_8', 10.0, 12.0, closed_form=True)
  _finished(tmp_path / 'runs' / 'acmr' / 'lr_1e-3', 30.0, 20.0)
  _finished(tmp_path / 'runs' / 'acmr' / 'lr_3e-4', 31.0, 21.0)
  paths = baseline_tuning.write(baseline_tuning.collect(tmp_path / 'runs', []))
  out = json.loads(paths[0].read_text())
  assert out['chosen'] == {'cca': 'pool_8', 'acmr': 'lr_3e-4'}
  assert out['configured'] == {'cca': 'pool_8', 'acmr': 'adv_0.03_lr_3e-3'}  # The configs now.
  table = paths[1].read_text()
  rows = {line.split(' | ')[1]: line for line in table.splitlines() if line.startswith('| acmr')}
  assert rows['lr_1e-3'].startswith('| acmr | lr_1e-3 | `--config.train.learning_rate=1e-3 ')
  assert rows['lr_1e-3'].endswith('image_pool=2` | 30.0 / 90.0 / 95.0 | 20.0 / 90.0 / 95.0 |  |')
  assert rows['lr_3e-4'].endswith('| **31.0 / 90.0 / 95.0** | **21.0 / 90.0 / 95.0** |  |')
  assert '| **10.0 / 90.0 / 95.0** | **12.0 / 90.0 / 95.0** | ✓ |' in table  # CCA's pool_8.


def test_trained_runs_of_different_budgets_are_not_mixed(tmp_path, monkeypatch):
  monkeypatch.setattr(baseline_tuning, 'RESULTS', tmp_path)
  _finished(tmp_path / 'acmr' / 'lr_1e-3', 30.0, 20.0, epochs=60)
  _finished(tmp_path / 'dbrlm' / 'lr_1e-3', 30.0, 20.0, epochs=40)
  with pytest.raises(ValueError, match='the sweep compares at one budget'):
    baseline_tuning.write(baseline_tuning.collect(tmp_path, []))


def test_each_committed_config_holds_the_setting_its_validation_sweep_chose():
  # The committed sweep's choices against configs/baselines/*.py as they are now: a config
  # changed without a new sweep (or a sweep not carried into its config) fails here.
  results = json.loads((baseline_tuning.RESULTS / 'baseline_tuning.json').read_text())
  assert set(results['chosen']) == set(baseline_tuning.SETTINGS)
  for baseline, setting in results['chosen'].items():
    assert baseline_tuning.configured(baseline) == setting, baseline
    assert results['configured'][baseline] == setting


def test_holds_compares_numbers_by_value_and_strings_exactly():
  assert baseline_tuning.holds('cca', 'pool_8')  # image_pool=8, cca_reg=1e-2 (0.01), gaussian.
  assert not baseline_tuning.holds('cca', 'cosine')
  assert not baseline_tuning.holds('acmr', 'lr_1e-3')  # Its reversal weight is not 1.0 now.
