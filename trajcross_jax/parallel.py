"""Data parallelism: the device mesh, global batches, and the multi-process runtime.

The train and eval steps are jitted over a 1-D mesh of every device of every process, with
the batch sharded along 'data' and parameters replicated; XLA inserts the gradient all-reduce
and gathers the contrastive negatives, so a step computes exactly the single-device function
of the global batch.
"""

import os

import jax
import numpy as np
from absl import logging
from jax.sharding import AxisType, NamedSharding, PartitionSpec

DATA_AXIS = 'data'

# Environment variables that say this process is one of several (jax.distributed reads them,
# or a cluster manager it knows, such as SLURM, sets its own).
_MULTIPROCESS_ENV = ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES')


def maybe_initialize_distributed() -> None:
  """Starts jax.distributed when the environment says this is one process of several."""
  if all(os.environ.get(k) for k in _MULTIPROCESS_ENV):
    jax.distributed.initialize(
      coordinator_address=os.environ['JAX_COORDINATOR_ADDRESS'],
      num_processes=int(os.environ['JAX_NUM_PROCESSES']),
      process_id=int(os.environ.get('JAX_PROCESS_ID', '0')),
    )
    logging.info(
      'jax.distributed: process %d of %d, %d local / %d global devices',
      jax.process_index(),
      jax.process_count(),
      jax.local_device_count(),
      jax.device_count(),
    )


def make_mesh(devices: list[jax.Device] | None = None) -> jax.sharding.Mesh:
  """A 1-D data mesh over `devices` (default: every device of every process).

  Auto axes, because Explicit axes reject the batch-sharded z_traj @ z_img.T of the loss.
  """
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), (DATA_AXIS,), (AxisType.Auto,), devices=devices)


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def check_batch_size(global_batch: int, mesh: jax.sharding.Mesh, what: str) -> None:
  """A clear error when a global batch cannot be split evenly over the mesh's devices."""
  if global_batch % mesh.size:
    raise ValueError(
      f'{what}={global_batch} does not divide over {mesh.size} devices: '
      f'use a multiple of {mesh.size}'
    )


def global_batch(local: dict[str, np.ndarray], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
  """This process's slice of a global batch -> global arrays sharded along 'data'."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}
