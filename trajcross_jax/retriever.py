"""A trained model as an embedding function: no optimiser, no training state, no dataset.

  retriever = Retriever.load('runs/default')            # the latest checkpoint
  z_traj = retriever.embed_trajectories(points)         # (N, M, 2) metres -> (N, D)
  z_img = retriever.embed_images(images, boxes)         # (N, S, S, 1) uint8, (N, 4) -> (N, D)
  scores = z_traj @ z_img.T                             # the model's similarity

`load` restores only the parameters and the method's extra state from an orbax checkpoint
(partial restore: the optimiser state stays on disk), builds the method from the config that
the checkpoint records, in the scene frame it records. Embedding is jitted once per batch shape
and runs across every local device, the batch split over them; a last partial batch is padded.
Each process embeds on its own devices, so several processes can embed different shards.
"""

import dataclasses
import functools
import hashlib
import io
from typing import Any

import jax
import ml_collections
import numpy as np
from etils import epath
from PIL import Image

from trajcross_jax import checkpoint, parallel
from trajcross_jax.data.builder import TrajcrossConfig
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import Method, get_method

IMAGE_SIZE = TrajcrossConfig.image_size
# Items per device in each sequential piece of an embedding call on CPU devices
# (parallel.in_micro_batches): about twice the rate of a 512-item call on 2 cores
# (benchmarks/train_speed.py). Accelerators run a call's batch at once.
CPU_MICRO_BATCH = 32


class InputError(ValueError):
  """Trajectories, images or boxes that the model cannot embed; the message says which."""


@dataclasses.dataclass(eq=False)
class Retriever:
  """A checkpoint's encoders, ready to embed.

  Attributes:
    method: the method (TRAJCROSS or a baseline), built in `normalisation`.
    params: its parameters, replicated on the local devices.
    extra: its extra state (e.g. a momentum encoder), likewise.
    config: the run's config (from the checkpoint, or the one given to `load`).
    normalisation: the scene frame positions are read in.
    workdir: where the checkpoint lives.
    step: the checkpoint's step.
    params_hash: sha256 of the parameters (hex, 16 digits): names the model in manifests.
    batch_size: items per jitted call (a multiple of the local device count); a shorter call is
      padded to the next power of two (`bucket`).
    mesh: the local devices' mesh.
    micro_batch: items per device that a call computes at a time (0: all at once); only the
      speed depends on it. None (the default): default_micro_batch of the mesh.
  """

  method: Method
  params: Any
  extra: Any
  config: ml_collections.ConfigDict
  normalisation: Normalisation
  workdir: str
  step: int
  params_hash: str
  batch_size: int
  mesh: jax.sharding.Mesh
  micro_batch: int | None = None

  def __post_init__(self):
    if self.micro_batch is None:
      self.micro_batch = default_micro_batch(self.mesh)

  @classmethod
  def load(
    cls,
    workdir: str,
    step: int = -1,
    config: ml_collections.ConfigDict | None = None,
    normalisation: Normalisation | None = None,
    batch_size: int = 512,
  ) -> 'Retriever':
    """Restores the checkpoint at `step` of `workdir` (-1: the latest) for embedding.

    Args:
      workdir: a training workdir (checkpoints in WORKDIR/checkpoints).
      step: the checkpoint's step; -1 for the latest.
      config: the config to build the method from; None uses the one the checkpoint records.
        Given, it must agree with the checkpoint on the method, model and window length.
      normalisation: the scene frame to read positions in; None uses the checkpoint's.
      batch_size: items per jitted call, rounded up to a multiple of the local devices.

    Raises:
      FileNotFoundError: no checkpoint there (or not at `step`).
      checkpoint.CheckpointMismatchError: `config` disagrees with the checkpoint.
    """
    directory = epath.Path(workdir).absolute() / 'checkpoints'
    if not directory.exists():
      raise FileNotFoundError(f'no checkpoint in {directory}: train first, or check --workdir')
    mgr = checkpoint.manager(workdir)
    resolved = mgr.latest_step() if step < 0 else step
    if resolved is None or resolved not in mgr.all_steps():
      raise FileNotFoundError(
        f'no checkpoint{"" if resolved is None else f" at step {resolved}"} in {directory}; '
        f'available: {sorted(mgr.all_steps())}'
      )
    meta = checkpoint.read_meta(mgr, resolved)
    if config is None:
      if 'run_config' not in meta:
        raise ValueError(
          f'the checkpoint at step {resolved} in {directory} records no config (made by an older '
          'version): pass the config that made it (--config)'
        )
      config = ml_collections.ConfigDict(meta['run_config'])
    else:
      checkpoint.check_identity(
        meta, config, training=False, where=f'step {resolved} in {directory}'
      )
    if normalisation is None:
      normalisation = checkpoint.normalisation(meta)
    method = get_method(config, normalisation)
    mesh = parallel.make_mesh(jax.local_devices())
    params_shape, extra_shape = abstract_params(method, config)
    params, extra = checkpoint.restore_for_inference(
      mgr, resolved, params_shape, extra_shape, parallel.replicated(mesh)
    )
    return cls.from_params(
      config,
      params,
      extra,
      normalisation,
      str(epath.Path(workdir).absolute()),
      resolved,
      batch_size,
    )

  @classmethod
  def from_params(
    cls,
    config: ml_collections.ConfigDict,
    params: Any,
    extra: Any,
    normalisation: Normalisation,
    workdir: str,
    step: int,
    batch_size: int = 512,
  ) -> 'Retriever':
    """A Retriever of parameters already in memory (e.g. the demo model's shipped ones).

    Raises ValueError unless the parameters have the shapes that `config`'s model makes.
    """
    method = get_method(config, normalisation)
    mesh = parallel.make_mesh(jax.local_devices())
    params_shape, extra_shape = abstract_params(method, config)
    expected = jax.tree.map(lambda s: (s.shape, str(s.dtype)), (params_shape, extra_shape))
    given = jax.tree.map(lambda x: (tuple(np.shape(x)), str(np.asarray(x).dtype)), (params, extra))
    if expected != given:
      raise ValueError("the parameters do not have the shapes of the config's model")
    params, extra = jax.device_put((params, extra), parallel.replicated(mesh))
    return cls(
      method=method,
      params=params,
      extra=extra,
      config=config,
      normalisation=normalisation,
      workdir=workdir,
      step=int(step),
      params_hash=tree_hash(params),
      batch_size=-(-batch_size // mesh.size) * mesh.size,
      mesh=mesh,
    )

  @property
  def window_length(self) -> int:
    return int(self.config.data.window_length)

  def describe(self) -> dict[str, Any]:
    """What names this model in manifests: workdir, step, parameter hash, model config, frame."""
    return {
      'workdir': self.workdir,
      'step': self.step,
      'params_hash': self.params_hash,
      'method': self.config.method,
      'config': checkpoint.identity(self.config, training=False),
      'normalisation': self.normalisation.to_json(),
    }

  def embed_trajectories(self, trajectories: np.ndarray) -> np.ndarray:
    """(N, M, 2) metres -> (N, D) float32 unit vectors."""
    trajectories = check_trajectories(trajectories, self.window_length)
    return self._embed('trajectories', trajectories)

  def embed_images(self, images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, S, S, 1) uint8 and boxes (N, 4) [x_left, y_top, x_right, y_bottom] -> (N, D)."""
    images, boxes = check_images(images), check_boxes(boxes)
    if len(images) != len(boxes):
      raise InputError(f'{len(images)} images but {len(boxes)} boxes')
    return self._embed('images', images, boxes)

  def _embed(self, which: str, *arrays: np.ndarray) -> np.ndarray:
    fn = functools.partial(
      _embed_fn(self.method, which, self.mesh, self.micro_batch), self.params, self.extra
    )
    out = parallel.map_batches(fn, list(arrays), self.batch_size, self.mesh)
    if out is None:
      return np.zeros((0, self.embedding_dim), np.float32)
    return out.astype(np.float32)

  def bucket(self, n: int) -> int:
    """The batch a call of `n` items is padded to (parallel.bucket)."""
    return parallel.bucket(n, self.mesh.size, self.batch_size)

  def buckets(self, up_to: int | None = None) -> list[int]:
    """Every batch shape that calls of at most `up_to` items (default `batch_size`) compile."""
    up_to = min(up_to or self.batch_size, self.batch_size)
    return sorted({self.bucket(n) for n in range(1, up_to + 1)})

  @functools.cached_property
  def embedding_dim(self) -> int:
    example = example_inputs(self.window_length, 1)
    shape = jax.eval_shape(
      self.method.embed_trajectories, self.params, self.extra, example['trajectory']
    )
    return int(shape.shape[-1])


def default_micro_batch(mesh: jax.sharding.Mesh) -> int:
  """CPU_MICRO_BATCH on CPU devices, 0 (a call's whole batch at once) on accelerators."""
  return CPU_MICRO_BATCH if mesh.devices.flat[0].platform == 'cpu' else 0


@functools.lru_cache(maxsize=16)
def _embed_fn(method: Method, which: str, mesh: jax.sharding.Mesh, micro_batch: int):
  """The jitted embedding of one modality (compiled once per input shape)."""
  embed = method.embed_trajectories if which == 'trajectories' else method.embed_images

  def run(params, extra, *arrays):
    return parallel.in_micro_batches(
      functools.partial(embed, params, extra), micro_batch, mesh.size
    )(*arrays)

  return jax.jit(run, out_shardings=parallel.replicated(mesh))


def abstract_params(method: Method, config: ml_collections.ConfigDict):
  """The shapes and dtypes of a method's (params, extra), without computing them."""
  example = example_inputs(config.data.window_length, 2)
  return jax.eval_shape(method.init, jax.random.key(0), example)


def example_inputs(window_length: int, n: int) -> dict[str, np.ndarray]:
  """Inputs shaped like a batch of n pairs, for shapes only."""
  return {
    'trajectory': np.zeros((n, window_length, 2), np.float32),
    'image': np.zeros((n, IMAGE_SIZE, IMAGE_SIZE, 1), np.uint8),
    'box': np.tile(np.array([0, 1, 1, 0], np.float32), (n, 1)),
  }


def tree_hash(tree: Any) -> str:
  """sha256 of a tree's leaves (paths, dtypes, shapes, bytes), 16 hex digits."""
  digest = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    leaf = np.asarray(leaf)
    digest.update(jax.tree_util.keystr(path).encode())
    digest.update(f'{leaf.dtype}{leaf.shape}'.encode())
    digest.update(np.ascontiguousarray(leaf).tobytes())
  return digest.hexdigest()[:16]


def check_trajectories(trajectories, window_length: int) -> np.ndarray:
  """(N, M, 2) finite metres as float32, or InputError saying what is wrong."""
  t = np.asarray(trajectories, dtype=np.float64)
  if t.ndim != 3 or t.shape[1:] != (window_length, 2):
    raise InputError(
      f'trajectories must be (N, {window_length}, 2) points (x, y) in metres, got shape {t.shape}'
    )
  bad = ~np.isfinite(t).all(axis=(1, 2))
  if bad.any():
    raise InputError(f'trajectory {int(np.flatnonzero(bad)[0])} has a NaN or infinite coordinate')
  return t.astype(np.float32)


def check_images(images) -> np.ndarray:
  """(N, S, S, 1) uint8 (an (N, S, S) batch gains its channel), or InputError."""
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  expected = (IMAGE_SIZE, IMAGE_SIZE, 1)
  if images.ndim != 4 or images.shape[1:] != expected:
    raise InputError(
      f'images must be {IMAGE_SIZE} x {IMAGE_SIZE} with one channel, got shape {images.shape[1:]}'
    )
  if images.dtype != np.uint8:
    raise InputError(f'images must be uint8 (0-255), got {images.dtype}')
  return images


def read_png(data: bytes) -> np.ndarray:
  """One (S, S, 1) uint8 image from the bytes of a PNG (or any image PIL reads) that is grey
  (mode L, or a palette's indices as P) and the model's size; InputError otherwise."""
  try:
    with Image.open(io.BytesIO(data)) as im:
      mode, array = im.mode, np.asarray(im)
  except OSError as e:
    raise InputError(f'not a readable image ({e})') from None
  if mode not in ('L', 'P') or array.shape != (IMAGE_SIZE, IMAGE_SIZE):
    raise InputError(
      f'a query image must be {IMAGE_SIZE} x {IMAGE_SIZE} grey (mode L), '
      f'got {array.shape} mode {mode}'
    )
  return array.astype(np.uint8)[..., None]


def check_boxes(boxes) -> np.ndarray:
  """(N, 4) [x_left, y_top, x_right, y_bottom] metres, finite, left < right, top > bottom."""
  b = np.asarray(boxes, dtype=np.float64)
  if b.ndim != 2 or b.shape[1] != 4:
    raise InputError(f'boxes must be (N, 4) [x_left, y_top, x_right, y_bottom], got {b.shape}')
  # Vectorised: a Python loop over the boxes took about 2 ms per 512.
  nonfinite = np.flatnonzero(~np.isfinite(b).all(axis=1))
  if nonfinite.size:
    raise InputError(f'box {int(nonfinite[0])} has a NaN or infinite coordinate')
  left, top, right, bottom = b.T
  if (bad := np.flatnonzero(~(left < right))).size:
    i = int(bad[0])
    raise InputError(f'box {i}: x_left {left[i]} must be < x_right {right[i]}')
  if (bad := np.flatnonzero(~(top > bottom))).size:
    i = int(bad[0])
    raise InputError(f'box {i}: y_top {top[i]} must be > y_bottom {bottom[i]}')
  return b.astype(np.float32)
