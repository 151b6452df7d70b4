"""Training batch order: a pure function of (seed, step), whole epochs, process slices."""

import numpy as np
import pytest

from configs import test as test_config
from trajcross_jax import validation
from trajcross_jax.data import pipeline


def _indices(step, seed=7, process_index=0, process_count=1):
  return pipeline.train_batch_indices(step, 50, 10, seed, process_index, process_count)


def test_each_epoch_is_a_fresh_permutation_and_order_depends_on_seed_and_step_only():
  seen = [_indices(s) for s in range(15)]  # Three epochs, asked in order.
  for epoch in range(3):
    np.testing.assert_array_equal(
      np.sort(np.concatenate(seen[5 * epoch : 5 * epoch + 5])), range(50)
    )
  assert not np.array_equal(seen[0], seen[5]), 'each epoch draws a new order'
  for s in (14, 3, 9):  # Out of order, as a resumed run asks.
    np.testing.assert_array_equal(_indices(s), seen[s])
  assert not np.array_equal(_indices(0, seed=8), seen[0])


def test_process_slices_make_up_the_global_batch():
  parts = [_indices(5, process_index=p, process_count=5) for p in range(5)]
  assert all(len(p) == 2 for p in parts)
  np.testing.assert_array_equal(np.concatenate(parts), _indices(5))


@pytest.mark.parametrize('pool', [0, 3])
def test_an_image_shape_pool_that_does_not_divide_the_image_is_a_config_error(pool):
  config = test_config.get_config()
  config.model.image_shape_pool = pool
  with pytest.raises(ValueError, match='config.model.image_shape_pool'):
    validation.validate(config)


def test_held_out_pedestrians_are_whole_pedestrians_drawn_from_the_seed():
  recordings = np.array(['a', 'a', 'b', 'b', 'b'] * 40)
  ped_ids = np.repeat(np.arange(100), 2) % 50
  held = pipeline.held_out_pedestrians(recordings, ped_ids, 0.3, seed=0)
  keys = [f'{r}/{p}' for r, p in zip(recordings, ped_ids, strict=True)]
  for key in set(keys):
    sides = {bool(h) for h, k in zip(held, keys, strict=True) if k == key}
    assert len(sides) == 1, f'pedestrian {key} is on both sides'
  assert 0.1 < held.mean() < 0.5
  np.testing.assert_array_equal(held, pipeline.held_out_pedestrians(recordings, ped_ids, 0.3, 0))
  assert not np.array_equal(held, pipeline.held_out_pedestrians(recordings, ped_ids, 0.3, 1))


def test_train_and_validation_split_the_training_pedestrians(synthetic_data_dir):
  config = test_config.get_config()
  config.data.data_dir = synthetic_data_dir
  builder = pipeline.prepare(config.data)
  whole = pipeline.run_split(builder, 'train', config.data)
  assert len(whole) == config.data.train_size
  with pytest.raises(ValueError, match='validation_fraction > 0'):
    pipeline.run_split(builder, 'validation', config.data)
  config.data.validation_fraction = 0.25
  train = pipeline.run_split(builder, 'train', config.data)
  val = pipeline.run_split(builder, 'validation', config.data)
  assert len(train) + len(val) == len(whole) and len(val) > 0 and len(train) > 0
  np.testing.assert_array_equal(np.sort(np.concatenate([train.indices, val.indices])), range(64))
  meta = pipeline.load_split(builder, 'train', True, features=('source', 'ped_id'))
  ids = meta.get_batch(np.arange(len(meta)))
  peds = [
    set(zip(ids['source'][s.indices], ids['ped_id'][s.indices], strict=True)) for s in (train, val)
  ]
  assert not peds[0] & peds[1]
  np.testing.assert_array_equal(
    val.get_batch(np.arange(3))['trajectory'], whole.get_batch(val.indices[:3])['trajectory']
  )
  test = pipeline.run_split(builder, 'test', config.data)
  assert len(test) == config.data.test_size
  with pytest.raises(ValueError, match="split must be 'train', 'validation' or 'test'"):
    pipeline.run_split(builder, 'dev', config.data)


@pytest.mark.parametrize(
  'field,value,message',
  [
    ('data.validation_fraction', 1.0, 'must be in [0, 1)'),
    ('data.validation_fraction', -0.1, 'must be in [0, 1)'),
    ('eval.split', 'dev', "config.eval.split='dev'"),
    ('eval.split', 'validation', 'needs config.data.validation_fraction > 0'),
  ],
)
def test_bad_split_settings_are_config_errors(field, value, message):
  config = test_config.get_config()
  section, name = field.split('.')
  config[section][name] = value
  with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(')', r'\)')):
    validation.validate(config)


def test_a_run_on_held_out_pedestrians_evaluates_the_validation_split(tmp_path, synthetic_data_dir):
  from trajcross_jax import evaluate, train

  config = test_config.get_config()
  config.data.data_dir = synthetic_data_dir
  config.data.validation_fraction = 0.25
  config.eval.split = 'validation'
  config.train.num_epochs = 1
  validation.validate(config)
  builder = pipeline.prepare(config.data)
  num_val = len(pipeline.run_split(builder, 'validation', config.data))
  state = train.train(config, str(tmp_path))
  steps_per_epoch = (config.data.train_size - num_val) // config.train.batch_size
  assert int(state.step) == steps_per_epoch, 'training must see only the other pedestrians'
  results = evaluate.evaluate(config, str(tmp_path))
  assert results['split'] == 'validation' and results['num_test'] == num_val
