"""Training and embedding throughput of the JAX step against its PyTorch peer, side by side.

  python -m benchmarks.train_speed [--batch=128] [--steps=10] [--rounds=3]

For two model sizes of configs/default.py (`reference`: the issue's reference sizes, 64-pixel
trajectory raster, unpooled image shape input, WCNN heights 3, 5, 7; `default`: the config as
it is), times the jitted, data-parallel JAX train step (image re-drawing included) and the same
step in PyTorch (benchmarks/peers/torch_trajcross.py: eager, channels_last and torch.compile
tried once each, the fastest kept), alternating JAX and PyTorch for --rounds rounds so that a
noisy machine slows both alike; the median of the rounds is reported with their ratio. Also both
towers' embedding rate without gradients (evaluation: JAX through the Retriever in calls of
--embed_batch items, in CPU micro-batches and, for the record, without them; the peer at the
best of several call sizes, since smaller calls also keep its activations in cache), the
step's FLOPs per pair (XLA's cost
analysis), the fraction of this machine's float32 matmul rate (measured in the same run), and
both implementations' parameter counts (the same architecture has the same count). Writes
benchmarks/results/train_speed.json. Needs torch (`pip install -e '.[bench]'`).
"""

import dataclasses
import json
import pathlib
import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags, logging

from benchmarks import machine
from configs import default
from trajcross_jax import parallel, train
from trajcross_jax.data import augment
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import get_method
from trajcross_jax.retriever import Retriever

# A univ-sized scene frame (the models' inputs lie in about [2, 16] m).
FRAME = Normalisation(center=(8.0, 7.0), scale=8.0)
REPO = pathlib.Path(__file__).resolve().parents[1]
SIZES = {
  'reference': {'traj_raster_size': 64, 'image_shape_pool': 1, 'wcnn_heights': (3, 5, 7)},
  'default': {},
}
TORCH_VARIANTS = ('eager', 'channels_last', 'compile')
# Call sizes tried for the peer's embedding (its best is compared).
TORCH_EMBED_BATCHES = (32, 64, 128, 256, 512)

_BATCH = flags.DEFINE_integer('batch', 128, 'Global batch.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed steps per measurement.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Alternating JAX / PyTorch measurements.')
_EMBED_BATCH = flags.DEFINE_integer('embed_batch', 512, 'Pairs per embedding call.')
_OUTPUT = flags.DEFINE_string(
  'output', str(REPO / 'benchmarks' / 'results' / 'train_speed.json'), 'Results file.'
)


def sized_config(size: str) -> ml_collections.ConfigDict:
  config = default.get_config()
  for field, value in SIZES[size].items():
    config.model[field] = value
  return config


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
  best = min(machine.seconds(lambda: f(a).block_until_ready()) for _ in range(repeats))
  return 2 * n**3 / best


class JaxStep:
  """The real train step of `config` (train.make_parallel_step), compiled once."""

  def __init__(self, config, batch):
    mesh = parallel.make_mesh()
    method = get_method(config, FRAME)
    tx = method.optimizer(1000)
    self.state = train.init_state(method, tx, config, mesh, batch)
    self.step = train.make_parallel_step(
      method, tx, config.train.redraw_images, 1000, mesh, self.state
    )
    self.rng = jax.device_put(jax.random.key(0), parallel.replicated(mesh))
    self.batch = parallel.global_batch(batch, mesh)
    compiled = self.step.lower(self.state, self.batch, self.rng).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    self.flops = float(cost.get('flops', float('nan')))
    self.config = config
    self.run(1)  # Warm.
    self.retriever = None  # Built after the last train step (steps donate the old parameters).
    self.parameters = sum(int(np.size(x)) for x in jax.tree.leaves(self.state.params))

  def run(self, steps: int) -> float:
    def go():
      for _ in range(steps):
        self.state, metrics = self.step(self.state, self.batch, self.rng)
      jax.block_until_ready(metrics)

    return machine.seconds(go)

  def embed(self, batch, micro_batch: int | None = None) -> float:
    """Seconds to embed both towers of `batch` (micro_batch: the Retriever's, None: default)."""
    if self.retriever is None:
      self.retriever = Retriever.from_params(
        self.config, self.state.params, self.state.extra, FRAME, '', 0, _EMBED_BATCH.value
      )
    retriever = self.retriever
    if micro_batch is not None:
      retriever = dataclasses.replace(retriever, micro_batch=micro_batch)
    return machine.seconds(
      lambda: (
        retriever.embed_trajectories(batch['trajectory']),
        retriever.embed_images(batch['image'], batch['box']),
      )
    )


class TorchStep:
  """The PyTorch peer's step of `config` in one variant."""

  def __init__(self, config, batch, variant: str):
    import torch

    from benchmarks.peers import torch_trajcross as peer

    self.torch = torch
    self.trainer = peer.Trainer(config, FRAME.center, FRAME.scale, variant=variant)
    self.tensors = peer.as_tensors(batch)
    self.run(2)  # Warm (torch.compile compiles here).
    self.parameters = sum(p.numel() for p in self.trainer.model.parameters())

  def run(self, steps: int) -> float:
    return machine.seconds(
      lambda: [self.trainer.step(self.tensors['trajectory']) for _ in range(steps)]
    )

  def embed(self, tensors, batch: int) -> float:
    """Seconds to embed both towers of `tensors` in calls of `batch` pairs."""

    def go():
      for start in range(0, len(tensors['trajectory']), batch):
        self.trainer.embed(
          *(tensors[k][start : start + batch] for k in ('trajectory', 'image', 'box'))
        )

    return machine.seconds(go)


def measure(size: str) -> dict:
  """Both implementations at one size: train and embedding rates, alternating."""
  config = sized_config(size)
  batch = random_batch(_BATCH.value, 64)
  n = _STEPS.value * _BATCH.value
  jax_step = JaxStep(config, batch)
  variants = {}
  for variant in TORCH_VARIANTS:
    try:
      step = TorchStep(config, batch, variant)
    except Exception as e:  # noqa: BLE001  A variant this machine cannot build is recorded.
      variants[variant] = {'error': f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'}
      logging.warning('%s: torch %s failed: %s', size, variant, variants[variant]['error'])
      continue
    variants[variant] = {'pairs_per_s': n / step.run(_STEPS.value), 'step': step}
    logging.info('%s: torch %s %.0f pairs/s', size, variant, variants[variant]['pairs_per_s'])
  ok = {k: v for k, v in variants.items() if 'step' in v}
  best = max(ok, key=lambda k: ok[k]['pairs_per_s'])
  torch_step = ok[best]['step']
  jax_rates, torch_rates = [], []
  for r in range(_ROUNDS.value):
    jax_rates.append(n / jax_step.run(_STEPS.value))
    torch_rates.append(n / torch_step.run(_STEPS.value))
    logging.info(
      '%s round %d: jax %.0f, torch %.0f pairs/s', size, r, jax_rates[-1], torch_rates[-1]
    )
  embed_batch = random_batch(_EMBED_BATCH.value, 64, seed=1)
  from benchmarks.peers import torch_trajcross as peer

  n_embed = _EMBED_BATCH.value
  tensors = peer.as_tensors(embed_batch)
  torch_calls = {}
  for b in TORCH_EMBED_BATCHES:
    torch_step.embed(tensors, b)  # Warm.
    torch_calls[b] = n_embed / torch_step.embed(tensors, b)
  torch_call = max(torch_calls, key=torch_calls.get)
  jax_step.embed(embed_batch)
  jax_step.embed(embed_batch, micro_batch=0)
  jax_embed, torch_embed, jax_whole = [], [], []
  for _ in range(_ROUNDS.value):
    jax_embed.append(n_embed / jax_step.embed(embed_batch))
    torch_embed.append(n_embed / torch_step.embed(tensors, torch_call))
    jax_whole.append(n_embed / jax_step.embed(embed_batch, micro_batch=0))
  jax_pairs, torch_pairs = statistics.median(jax_rates), statistics.median(torch_rates)
  return {
    'model': {k: list(v) if isinstance(v, tuple) else v for k, v in SIZES[size].items()},
    'jax_pairs_per_s': jax_pairs,
    'torch_pairs_per_s': torch_pairs,
    'ratio': jax_pairs / torch_pairs,
    'jax_rounds': jax_rates,
    'torch_rounds': torch_rates,
    'torch_variant': best,
    'torch_variants': {
      k: {kk: vv for kk, vv in v.items() if kk != 'step'} for k, v in variants.items()
    },
    'flops_per_pair': jax_step.flops / _BATCH.value,
    'parameters': {'jax': jax_step.parameters, 'torch': torch_step.parameters},
    'embed': {
      'jax_pairs_per_s': statistics.median(jax_embed),
      'torch_pairs_per_s': statistics.median(torch_embed),
      'ratio': statistics.median(jax_embed) / statistics.median(torch_embed),
      'jax_rounds': jax_embed,
      'torch_rounds': torch_embed,
      'jax_micro_batch': jax_step.retriever.micro_batch,
      'jax_whole_call_pairs_per_s': statistics.median(jax_whole),
      'torch_call_batch': torch_call,
      'torch_call_batches': {str(k): v for k, v in torch_calls.items()},
    },
  }


def main(argv):
  del argv
  import torch

  sizes = {size: measure(size) for size in SIZES}
  rate = matmul_rate()
  for s in sizes.values():
    s['fraction_of_matmul_rate'] = s['flops_per_pair'] * s['jax_pairs_per_s'] / rate
  record = {
    'command': 'python -m benchmarks.train_speed',
    'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'machine': machine.describe(),
    'torch': torch.__version__,
    'torch_threads': torch.get_num_threads(),
    'batch': _BATCH.value,
    'steps': _STEPS.value,
    'rounds': _ROUNDS.value,
    'devices': jax.device_count(),
    'matmul_flops_per_s': rate,
    'sizes': sizes,
  }
  out = pathlib.Path(_OUTPUT.value)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(record, indent=2) + '\n')
  print(json.dumps({k: v for k, v in record.items() if k != 'machine'}, indent=2))
  print(f'wrote {out}')


if __name__ == '__main__':
  app.run(main)
