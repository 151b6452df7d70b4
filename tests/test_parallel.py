"""Data-parallel helpers that are not covered through training: micro-batched calls."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trajcross_jax import parallel


@pytest.mark.parametrize(
  'n, devices, per_device, pieces',
  [(512, 1, 32, 16), (512, 2, 32, 8), (48, 2, 8, 3), (40, 2, 8, 2), (6, 2, 8, 1), (64, 2, 0, 1)],
)
def test_micro_batches_split_every_shard_evenly(n, devices, per_device, pieces):
  assert parallel.micro_batches(n, devices, per_device) == pieces
  assert (n // devices) % pieces == 0


def test_in_micro_batches_equals_one_call_on_a_sharded_batch():
  mesh = parallel.make_mesh()
  assert mesh.size == 2  # conftest's two CPU devices.

  def fn(x, y):  # Per item: any mix-up of items or of their order changes the output.
    return jnp.tanh(x @ jnp.arange(12.0).reshape(4, 3)) + y[:, None]

  x = np.random.default_rng(0).normal(size=(48, 4)).astype(np.float32)
  y = np.arange(48, dtype=np.float32)
  sharding = parallel.batch_sharding(mesh)
  args = [jax.device_put(a, sharding) for a in (x, y)]
  expected = jax.jit(fn)(*args)
  pieces = parallel.micro_batches(48, mesh.size, 8)
  assert pieces == 3
  got = jax.jit(parallel.in_micro_batches(fn, 8, mesh.size))(*args)
  np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6)
  # lax.map really ran: the jitted program holds a loop.
  text = jax.jit(parallel.in_micro_batches(fn, 8, mesh.size)).lower(*args).as_text()
  assert 'while' in text
