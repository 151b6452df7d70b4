"""Training and embedding throughput of the JAX step against its PyTorch peer, side by side.

  python -m benchmarks.train_speed [--batch=128] [--steps=10] [--rounds=3]
  # On a GPU (benchmarks/device_run.sh): both frameworks at each matmul precision.
  python -m benchmarks.train_speed --batch=1024 --embed_batch=16384 \
    --precisions=tensorfloat32,bfloat16 --matmul_rates=float32,tensorfloat32,bfloat16

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

Precisions (--precisions; `default` leaves both frameworks as they are, which on CPU is float32):
`float32` (JAX 'highest', PyTorch with TF32 off), `tensorfloat32` (JAX 'tensorfloat32', PyTorch
with TF32 on for matmuls and cuDNN convolutions) and `bfloat16` (JAX 'bfloat16' matmul precision,
PyTorch under bfloat16 autocast): each pair of rows is the same work at the same precision. The
peer runs on the GPU when PyTorch sees one; its variant is chosen at the first precision and
kept for the others (torch.compile compiles again per precision).
"""

import contextlib
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
from benchmarks.walks import FRAME, random_batch
from configs import default
from trajcross_jax import parallel, train
from trajcross_jax.methods import get_method
from trajcross_jax.retriever import Retriever

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZES = {
  'reference': {'traj_raster_size': 64, 'image_shape_pool': 1, 'wcnn_heights': (3, 5, 7)},
  'default': {},
}
# --precisions: JAX's default_matmul_precision for each (None: left alone).
PRECISIONS = {
  'default': None,
  'float32': 'highest',
  'tensorfloat32': 'tensorfloat32',
  'bfloat16': 'bfloat16',
}
TORCH_VARIANTS = ('eager', 'channels_last', 'compile')
# Call sizes tried for the peer's embedding (its best is compared), up to --embed_batch.
TORCH_EMBED_BATCHES = (32, 64, 128, 256, 512, 2048, 8192)

_BATCH = flags.DEFINE_integer('batch', 128, 'Global batch.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed steps per measurement.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Alternating JAX / PyTorch measurements.')
_EMBED_BATCH = flags.DEFINE_integer('embed_batch', 512, 'Pairs per embedding call.')
_SIZES = flags.DEFINE_list('sizes', list(SIZES), 'Model sizes to measure.')
_PRECISIONS = flags.DEFINE_list('precisions', ['default'], f'Of {list(PRECISIONS)}.')
_VARIANTS = flags.DEFINE_list('torch_variants', list(TORCH_VARIANTS), 'Peer variants tried.')
_MATMUL_RATES = flags.DEFINE_list(
  'matmul_rates', ['default'], 'Precisions whose square-matmul FLOP/s is measured.'
)
_MATMUL_SIZE = flags.DEFINE_integer('matmul_size', 2048, 'Side of the timed square matmul.')
_OUTPUT = flags.DEFINE_string(
  'output', str(REPO / 'benchmarks' / 'results' / 'train_speed.json'), 'Results file.'
)


def sized_config(size: str) -> ml_collections.ConfigDict:
  config = default.get_config()
  for field, value in SIZES[size].items():
    config.model[field] = value
  return config


def matmul_rate(n: int, precision: str, repeats: int = 5) -> float:
  """FLOP/s of an n x n matmul on the default device at `precision`, best of `repeats`.

  bfloat16 multiplies bfloat16 matrices; the others float32 ones at that matmul precision.
  """
  dtype = jnp.bfloat16 if precision == 'bfloat16' else jnp.float32
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)  # Not zeros: they run faster.
  with jax_precision(precision):
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(machine.seconds(lambda: f(a).block_until_ready()) for _ in range(repeats))
  return 2 * n**3 / best


def jax_precision(precision: str) -> contextlib.AbstractContextManager:
  """The scope in which JAX compiles and runs at `precision` (PRECISIONS)."""
  value = PRECISIONS[precision]
  return contextlib.nullcontext() if value is None else jax.default_matmul_precision(value)


def torch_device() -> str:
  import torch

  return 'cuda' if torch.cuda.is_available() else 'cpu'


def torch_precision(precision: str):
  """Sets PyTorch's TF32 switches for `precision`; returns the autocast dtype (or None)."""
  import torch

  if precision in ('float32', 'tensorfloat32'):
    torch.backends.cuda.matmul.allow_tf32 = precision == 'tensorfloat32'
    torch.backends.cudnn.allow_tf32 = precision == 'tensorfloat32'
  return torch.bfloat16 if precision == 'bfloat16' else None


class JaxStep:
  """The real train step of `config` (train.make_parallel_step), compiled once at `precision`."""

  def __init__(self, config, batch, precision: str = 'default'):
    self.precision = precision
    mesh = parallel.make_mesh()
    method = get_method(config, FRAME)
    tx = method.optimizer(1000)
    with jax_precision(precision):
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
      with jax_precision(self.precision):
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

    def go():
      with jax_precision(self.precision):
        retriever.embed_trajectories(batch['trajectory'])
        retriever.embed_images(batch['image'], batch['box'])

    return machine.seconds(go)


class TorchStep:
  """The PyTorch peer's step of `config` in one variant, at `precision`, on torch_device()."""

  def __init__(self, config, batch, variant: str, precision: str = 'default'):
    import torch

    from benchmarks.peers import torch_trajcross as peer

    self.torch, self.device = torch, torch_device()
    self.precision = precision
    autocast = torch_precision(precision)
    self.trainer = peer.Trainer(
      config, FRAME.center, FRAME.scale, variant=variant, device=self.device, autocast=autocast
    )
    self.tensors = peer.as_tensors(batch, self.device)
    self.run(2)  # Warm (torch.compile compiles here).
    self.parameters = sum(p.numel() for p in self.trainer.model.parameters())

  def _timed(self, fn) -> float:
    torch_precision(self.precision)

    def go():
      fn()
      if self.device == 'cuda':
        self.torch.cuda.synchronize()

    return machine.seconds(go)

  def run(self, steps: int) -> float:
    return self._timed(
      lambda: [self.trainer.step(self.tensors['trajectory']) for _ in range(steps)]
    )

  def embed(self, tensors, batch: int) -> float:
    """Seconds to embed both towers of `tensors` in calls of `batch` pairs."""

    def go():
      for start in range(0, len(tensors['trajectory']), batch):
        self.trainer.embed(
          *(tensors[k][start : start + batch] for k in ('trajectory', 'image', 'box'))
        )

    return self._timed(go)


def measure(size: str, precision: str, variant: str | None = None) -> dict:
  """Both implementations at one size and precision: train and embedding rates, alternating.

  variant: the peer's variant; None tries --torch_variants and keeps the fastest.
  """
  config = sized_config(size)
  batch = random_batch(_BATCH.value, 64)
  n = _STEPS.value * _BATCH.value
  jax_step = JaxStep(config, batch, precision)
  variants = {}
  for v in [variant] if variant else _VARIANTS.value:
    try:
      step = TorchStep(config, batch, v, precision)
    except Exception as e:  # noqa: BLE001  A variant this machine cannot build is recorded.
      variants[v] = {'error': f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'}
      logging.warning('%s: torch %s failed: %s', size, v, variants[v]['error'])
      continue
    variants[v] = {'pairs_per_s': n / step.run(_STEPS.value), 'step': step}
    logging.info('%s %s: torch %s %.0f pairs/s', size, precision, v, variants[v]['pairs_per_s'])
  ok = {k: v for k, v in variants.items() if 'step' in v}
  best = max(ok, key=lambda k: ok[k]['pairs_per_s'])
  torch_step = ok[best]['step']
  jax_rates, torch_rates = [], []
  for r in range(_ROUNDS.value):
    jax_rates.append(n / jax_step.run(_STEPS.value))
    torch_rates.append(n / torch_step.run(_STEPS.value))
    logging.info(
      '%s %s round %d: jax %.0f, torch %.0f pairs/s',
      size,
      precision,
      r,
      jax_rates[-1],
      torch_rates[-1],
    )
  embed_batch = random_batch(_EMBED_BATCH.value, 64, seed=1)
  from benchmarks.peers import torch_trajcross as peer

  n_embed = _EMBED_BATCH.value
  tensors = peer.as_tensors(embed_batch, torch_step.device)
  torch_calls = {}
  for b in [b for b in TORCH_EMBED_BATCHES if b <= n_embed] or [n_embed]:
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
    'precision': precision,
    'jax_pairs_per_s': jax_pairs,
    'torch_pairs_per_s': torch_pairs,
    'ratio': jax_pairs / torch_pairs,
    'jax_rounds': jax_rates,
    'torch_rounds': torch_rates,
    'torch_device': torch_step.device,
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


def with_fractions(result: dict, rates: dict[str, float]) -> dict:
  """result plus its share of each measured matmul rate (the first one also on its own)."""
  achieved = result['flops_per_pair'] * result['jax_pairs_per_s']
  fractions = {name: achieved / rate for name, rate in rates.items()}
  return {
    **result,
    'fraction_of_matmul_rate': next(iter(fractions.values())),
    'fraction_of_matmul_rates': fractions,
  }


def main(argv):
  del argv
  import torch

  rates = {p: matmul_rate(_MATMUL_SIZE.value, p) for p in _MATMUL_RATES.value}
  record = {
    'command': 'python -m benchmarks.train_speed',
    'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'machine': machine.describe(),
    'torch': torch.__version__,
    'torch_threads': torch.get_num_threads(),
    'torch_device': torch_device(),
    'batch': _BATCH.value,
    'steps': _STEPS.value,
    'rounds': _ROUNDS.value,
    'devices': jax.device_count(),
    'matmul_flops_per_s': next(iter(rates.values())),
    'matmul_flops_per_s_by_precision': rates,
    'precisions': {},
  }
  out = pathlib.Path(_OUTPUT.value)
  out.parent.mkdir(parents=True, exist_ok=True)
  for size in _SIZES.value:
    variant = None
    for precision in _PRECISIONS.value:
      result = with_fractions(measure(size, precision, variant), rates)
      variant = result['torch_variant']
      record['precisions'].setdefault(precision, {})[size] = result
      # The first precision's rows also under `sizes` (the layout of a one-precision run).
      record['sizes'] = record['precisions'][_PRECISIONS.value[0]]
      # Written after each measurement, so that a run stopped at a time limit keeps its rows.
      out.write_text(json.dumps(record, indent=2) + '\n')
  print(json.dumps({k: v for k, v in record.items() if k not in ('machine', 'sizes')}, indent=2))
  print(f'wrote {out}')


if __name__ == '__main__':
  app.run(main)
