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
