"""Checkpoints: round trip, config mismatch, and the last good checkpoint after a NaN."""

import re

import jax
import numpy as np
import pytest

from configs import test as test_config
from trajcross_jax import checkpoint, evaluate, parallel, train
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import get_method

# A univ-sized scene frame (the models' inputs lie in about [2, 16] m).
FRAME = Normalisation(center=(8.0, 7.0), scale=8.0)


def _fresh_state(batch):
  """The tiny config, its method and optimiser, a mesh of all devices, and a new state."""
  config = test_config.get_config()
  method = get_method(config, FRAME)
  tx = method.optimizer(10)
  mesh = parallel.make_mesh()
  return config, method, tx, mesh, train.init_state(method, tx, config, mesh, batch)


def test_save_restore_round_trip(tmp_path, tiny_batch):
  config, method, tx, mesh, state = _fresh_state(tiny_batch)
  p_step = train.make_parallel_step(method, tx, False, 10, mesh, state)
  state, _ = p_step(state, parallel.global_batch(tiny_batch, mesh), jax.random.key(0))
  mgr = checkpoint.manager(str(tmp_path))
  checkpoint.save(mgr, 1, state, {'config': checkpoint.identity(config)})
  target = train.abstract_state(method, tx, config, mesh, tiny_batch)
  restored, meta = checkpoint.restore(mgr, 1, target, config)
  assert meta['config'] == checkpoint.identity(config)
  assert int(restored.step) == 1
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_restore_under_another_config_names_the_difference(tmp_path, tiny_batch):
  config, method, tx, mesh, state = _fresh_state(tiny_batch)
  mgr = checkpoint.manager(str(tmp_path))
  checkpoint.save(mgr, 0, state, {'config': checkpoint.identity(config)})
  other = test_config.get_config()
  other.model.branch_dim = 8
  target = train.abstract_state(get_method(other, FRAME), tx, other, mesh, tiny_batch)
  with pytest.raises(ValueError, match=r'model.branch_dim: checkpoint 16, config 8'):
    checkpoint.restore(mgr, 0, target, other)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(
  tmp_path, synthetic_data_dir
):
  config = test_config.get_config()
  config.data.data_dir = synthetic_data_dir
  config.train.learning_rate = 1e30
  config.train.warmup_steps = 1
  config.train.grad_clip = 1e30
  config.train.checkpoint_every_steps = 1
  config.train.num_epochs = 10
  with pytest.raises(train.NonFiniteLossError, match=r'at step (\d+)') as err:
    train.train(config, str(tmp_path))
  bad_step = int(re.search(r'at step (\d+)', str(err.value)).group(1))
  assert f'the last good checkpoint is step {bad_step - 2} ' in str(err.value)
  mgr = checkpoint.manager(str(tmp_path))
  assert mgr.latest_step() == bad_step - 1  # Nothing after the failure was saved.
  # The last good checkpoint is still there and evaluates to finite numbers.
  config.eval.step = bad_step - 2
  results = evaluate.evaluate(config, str(tmp_path))
  assert results['step'] == bad_step - 2
  assert np.isfinite(results['traj2img']['mean_rank'])
  assert results['traj2img']['mean_rank'] < results['num_test']


def test_a_relative_workdir_is_taken_from_the_current_directory(tmp_path, monkeypatch, tiny_batch):
  config, method, tx, mesh, state = _fresh_state(tiny_batch)
  monkeypatch.chdir(tmp_path)
  mgr = checkpoint.manager('relative/work')
  checkpoint.save(mgr, 3, state, {'config': checkpoint.identity(config)})
  assert (tmp_path / 'relative' / 'work' / 'checkpoints' / '3').is_dir()
