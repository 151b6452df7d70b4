"""Data parallelism: the device mesh, global batches, and the multi-process runtime.

The train and eval steps are jitted over a 1-D mesh of every device of every process, with
the batch sharded along 'data' and parameters replicated; XLA inserts the gradient all-reduce
and gathers the contrastive negatives, so a step computes the single-device function of the
global batch (up to the order of float sums).

Several processes (several hosts, or one process per GPU) run the same program under JAX's
multi-controller runtime. `maybe_initialize_distributed` starts it from the environment:

- JAX_COORDINATOR_ADDRESS (HOST:PORT of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID, as
  launch/multihost.sh and launch/slurm.sbatch export them; each process then drives all of its
  local devices (or those in JAX_LOCAL_DEVICE_IDS);
- or, with none of those set, a SLURM job step of several tasks (`srun -n N python -m
  trajcross_jax.main ...`), which jax.distributed detects itself: one device per task;
- otherwise this is the only process.
"""

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import AxisType, NamedSharding, PartitionSpec

DATA_AXIS = 'data'
T = TypeVar('T')

# Set together by launch/multihost.sh and launch/slurm.sbatch.
EXPLICIT_ENV = ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID')

# How long a process waits for the others (seconds). HEARTBEAT bounds how long the survivors
# of a dead process wait before they stop with an error; SHUTDOWN how long a finished process
# waits at exit for the others; INIT how long processes wait for each other at start-up.
TIMEOUT_ENV = {
  'initialization_timeout': ('TRAJCROSS_INIT_TIMEOUT_S', 300),
  'heartbeat_timeout_seconds': ('TRAJCROSS_HEARTBEAT_TIMEOUT_S', 60),
  'shutdown_timeout_seconds': ('TRAJCROSS_SHUTDOWN_TIMEOUT_S', 60),
}


def distributed_settings(environ: Mapping[str, str]) -> dict[str, Any] | None:
  """The jax.distributed.initialize arguments that `environ` asks for; None for one process.

  Raises ValueError, naming the variables, for a partial or inconsistent set.
  """
  explicit = {k: environ[k] for k in EXPLICIT_ENV if environ.get(k)}
  timeouts = {arg: _int_env(environ, name, default) for arg, (name, default) in TIMEOUT_ENV.items()}
  if explicit:
    missing = [k for k in EXPLICIT_ENV if k not in explicit]
    if missing:
      raise ValueError(
        f'{", ".join(sorted(explicit))} set but {", ".join(missing)} not: set all of '
        f'{", ".join(EXPLICIT_ENV)} (launch/multihost.sh does)'
      )
    num_processes = _int_env(environ, 'JAX_NUM_PROCESSES', None)
    process_id = _int_env(environ, 'JAX_PROCESS_ID', None)
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise ValueError(
        f'JAX_PROCESS_ID={process_id} must be in [0, JAX_NUM_PROCESSES={num_processes})'
      )
    return dict(
      coordinator_address=explicit['JAX_COORDINATOR_ADDRESS'],
      num_processes=num_processes,
      process_id=process_id,
      # Not SLURM's one device per task: the process drives every local device (or those
      # in JAX_LOCAL_DEVICE_IDS, which jax.distributed reads itself).
      cluster_detection_method='deactivate',
      **timeouts,
    )
  if 'SLURM_STEP_NODELIST' in environ and _int_env(environ, 'SLURM_NTASKS', 1) > 1:
    return dict(cluster_detection_method='slurm', **timeouts)
  return None


def _int_env(environ: Mapping[str, str], name: str, default: int | None) -> int:
  value = environ.get(name)
  if value is None:
    return default
  try:
    return int(value)
  except ValueError:
    raise ValueError(f'{name}={value!r} is not an integer') from None


def maybe_initialize_distributed(environ: Mapping[str, str] = os.environ) -> None:
  """Starts jax.distributed when the environment says this is one process of several.

  Must run before anything touches a JAX device. On CPU the cross-process collectives are
  gloo's (over TCP) unless JAX_CPU_COLLECTIVES_IMPLEMENTATION says otherwise.
  """
  settings = distributed_settings(environ)
  if settings is None:
    return
  if 'JAX_CPU_COLLECTIVES_IMPLEMENTATION' not in environ:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(**settings)
  logging.info(
    'jax.distributed: process %d of %d, %d local / %d global devices',
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )


def is_chief() -> bool:
  """Whether this process writes logs, metrics and results (process 0)."""
  return jax.process_index() == 0


def chief_first(fn: Callable[..., T], *args, **kwargs) -> T:
  """fn(*args, **kwargs) on process 0 first, then (after a barrier) on the other processes.

  For work on shared storage that must not run twice at once, such as building the dataset:
  the others find it done. If process 0 fails, the others stop when it exits.
  """
  if jax.process_count() == 1:
    return fn(*args, **kwargs)
  if is_chief():
    result = fn(*args, **kwargs)
  multihost_utils.sync_global_devices(f'chief_first {fn.__module__}.{fn.__qualname__}')
  if not is_chief():
    result = fn(*args, **kwargs)
  return result


def make_mesh(devices: list[jax.Device] | None = None) -> jax.sharding.Mesh:
  """A 1-D data mesh over `devices` (default: every device of every process).

  Devices are ordered by (process, id), so process p's devices hold the p-th contiguous block
  of a global batch: the block that the pipeline gives process p (see global_batch). Auto
  axes, because Explicit axes reject the batch-sharded z_traj @ z_img.T of the loss.
  """
  devices = jax.devices() if devices is None else devices
  devices = sorted(devices, key=lambda d: (d.process_index, d.id))
  return jax.sharding.Mesh(np.array(devices), (DATA_AXIS,), axis_types=(AxisType.Auto,))


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
  """This process's slice of a global batch -> global arrays sharded along 'data'.

  Process p's slice becomes the p-th contiguous block of the global batch (make_mesh's order).
  """
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Host values, the same on every process -> arrays replicated on every device of `mesh`.

  jax.device_put cannot do this once the mesh spans devices of other processes. PRNG keys are
  replicated through their key data.
  """
  sharding = replicated(mesh)

  def put(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
    x = np.asarray(x)
    return jax.make_array_from_process_local_data(sharding, x, x.shape)

  return jax.tree.map(put, tree)


def next_power_of_two(n: int) -> int:
  """The smallest power of two >= n (1 for n <= 1)."""
  return 1 << max(int(n) - 1, 0).bit_length()


def bucket(n: int, devices: int, batch_size: int) -> int:
  """The batch a call of `n` items is padded to: the next power of two, a multiple of
  `devices`, at most `batch_size` (itself a multiple of `devices`)."""
  return min(-(-next_power_of_two(n) // devices) * devices, batch_size)


def micro_batches(n: int, devices: int, per_device: int) -> int:
  """How many sequential micro-batches a batch of `n` items (`devices` shards) runs as.

  The most that keeps at least `per_device` items on each device and splits every shard
  evenly; 1 (the whole batch at once) when `per_device` is 0 or the batch is that small.
  """
  if per_device <= 0 or n % devices:
    return 1
  return largest_divisor(n // devices, max(1, n // (devices * per_device)))


def largest_divisor(n: int, at_most: int) -> int:
  """The largest divisor of n (>= 1) that is at most `at_most` (>= 1)."""
  return max(d for d in range(1, min(at_most, n) + 1) if n % d == 0)


def in_micro_batches(fn: Callable[..., jax.Array], per_device: int, devices: int):
  """fn over its batch (leading) axis as a sequence of smaller calls, inside one jitted call.

  The same outputs as fn (every item is computed alone) in a different order of work: the
  batch is cut into `micro_batches` pieces run one after another by lax.map, so that each
  piece's activations stay in the CPU's caches. Measured with the embedding towers on 2 cores
  (benchmarks/train_speed.py): 32 items a piece ran about twice as fast as 512 at once. On a
  GPU large batches are what is fast: pass per_device=0 there. Item i of the batch goes to
  piece i % pieces, so every piece keeps the batch's split over the devices (a device's
  contiguous block of items stays on it).
  """

  def run(*arrays: jax.Array) -> jax.Array:
    n = arrays[0].shape[0]
    pieces = micro_batches(n, devices, per_device)
    if pieces == 1:
      return fn(*arrays)
    stacked = [jnp.moveaxis(a.reshape((n // pieces, pieces) + a.shape[1:]), 1, 0) for a in arrays]
    out = jax.lax.map(lambda xs: fn(*xs), stacked)
    return jnp.moveaxis(out, 0, 1).reshape((n,) + out.shape[2:])

  return run


def map_batches(
  fn: Callable[..., jax.Array], arrays: list[np.ndarray], batch_size: int, mesh: jax.sharding.Mesh
) -> np.ndarray | None:
  """fn over `arrays` (split along their first axis) in batches sharded over `mesh`'s devices.

  Few shapes compile: a short batch (a service's query, a split's last batch) is padded to its
  `bucket` by repeating its first item, and the padding's outputs are dropped. Returns the
  concatenated host outputs, or None for no items.
  """
  n = len(arrays[0])
  sharding = batch_sharding(mesh)
  out = []
  for start in range(0, n, batch_size):
    chunk = [a[start : start + batch_size] for a in arrays]
    real = len(chunk[0])
    size = bucket(real, mesh.size, batch_size)
    padded = [np.concatenate([c, np.repeat(c[:1], size - real, 0)]) for c in chunk]
    out.append(np.asarray(fn(*[jax.device_put(p, sharding) for p in padded]))[:real])
  return np.concatenate(out) if out else None
