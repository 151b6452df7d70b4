"""Training throughput: pairs/s of the real train step, its FLOPs, and the machine's matmul rate.

  python -m benchmarks.train_speed [--config=configs/default.py] [--batch=128] [--steps=20]

Times the jitted, data-parallel train step of the config (image re-drawing included) on random
pedestrian-like trajectories at the given global batch over all local devices, reads the step's
FLOPs from XLA's cost analysis, measures this machine's float32 matmul rate in the same run, and
writes benchmarks/results/train_speed.json.
"""

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from benchmarks import machine
from trajcross_jax import parallel, train
from trajcross_jax.data import augment
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import get_method

# A univ-sized scene frame (the models' inputs lie in about [2, 16] m).
FRAME = Normalisation(center=(8.0, 7.0), scale=8.0)

REPO = pathlib.Path(__file__).resolve().parents[1]
config_flags.DEFINE_config_file('config', str(REPO / 'configs' / 'default.py'), 'Config file.')
_BATCH = flags.DEFINE_integer('batch', 128, 'Global batch.')
_STEPS = flags.DEFINE_integer('steps', 20, 'Timed steps (after one compile step).')
_OUTPUT = flags.DEFINE_string(
  'output', str(REPO / 'benchmarks' / 'results' / 'train_speed.json'), 'Results file.'
)


def random_batch(size: int, image_size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Pedestrian-like random walks in the univ plaza, with protocol-rendered images."""
  rng = np.random.default_rng(seed)
  steps = rng.normal(0.0, 0.15, (size, 20, 2)) + rng.normal(0.0, 0.4, (size, 1, 2))
  traj = (np.cumsum(steps, axis=1) + rng.uniform(2, 12, (size, 1, 2))).astype(np.float32)
  image, box = jax.jit(augment.redraw_images, static_argnums=2)(
    jax.random.key(seed), traj, image_size
  )
  return {'trajectory': traj, 'image': np.asarray(image), 'box': np.asarray(box)}


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
  """float32 FLOP/s of an n x n matmul on the default device, best of `repeats`."""
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = min(_seconds(lambda: f(a).block_until_ready()) for _ in range(repeats))
  return 2 * n**3 / best


def _seconds(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def main(argv):
  del argv
  config = flags.FLAGS.config
  mesh = parallel.make_mesh()
  batch = random_batch(_BATCH.value, 64)
  method = get_method(config, FRAME)
  tx = method.optimizer(1000)
  state = train.init_state(method, tx, config, mesh, batch)
  step = train.make_parallel_step(method, tx, config.train.redraw_images, mesh, state)
  rng = jax.device_put(jax.random.key(0), parallel.replicated(mesh))
  global_batch = parallel.global_batch(batch, mesh)
  compiled = step.lower(state, global_batch, rng).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  flops_per_step = float(cost.get('flops', float('nan')))
  state, metrics = step(state, global_batch, rng)
  jax.block_until_ready(metrics)

  def run():
    nonlocal state
    for _ in range(_STEPS.value):
      state, m = step(state, global_batch, rng)
    jax.block_until_ready(m)

  elapsed = _seconds(run)
  pairs_per_s = _STEPS.value * _BATCH.value / elapsed
  rate = matmul_rate()
  record = {
    'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'machine': machine.describe(),
    'config': flags.FLAGS['config'].value and str(flags.FLAGS['config'].config_filename),
    'batch': _BATCH.value,
    'devices': jax.device_count(),
    'pairs_per_s': pairs_per_s,
    'step_s': elapsed / _STEPS.value,
    'flops_per_pair': flops_per_step / _BATCH.value,
    'matmul_flops_per_s': rate,
    'fraction_of_matmul_rate': flops_per_step * _STEPS.value / elapsed / rate,
  }
  out = pathlib.Path(_OUTPUT.value)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(record, indent=2) + '\n')
  print(json.dumps({k: v for k, v in record.items() if k != 'machine'}, indent=2))
  print(f'wrote {out}')


if __name__ == '__main__':
  app.run(main)
