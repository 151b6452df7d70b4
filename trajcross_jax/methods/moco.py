"""MoCo (He et al. 2020): a query encoder, its momentum copy as the key encoder, a queue."""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from trajcross_jax import losses
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods.base import Batch, Method, PyTree, encoder_optimizer
from trajcross_jax.models import baselines, inputs


def momentum_update(key_params: PyTree, query_params: PyTree, momentum: float) -> PyTree:
  """theta_k <- m theta_k + (1 - m) theta_q, with no gradient to the query encoder."""
  query_params = jax.lax.stop_gradient(query_params)
  return jax.tree.map(lambda k, q: momentum * k + (1 - momentum) * q, key_params, query_params)


def enqueue(queue: jax.Array, keys: jax.Array) -> jax.Array:
  """First in, first out: the batch's keys enter at the front, the oldest len(keys) leave."""
  return jnp.concatenate([keys, queue])[: queue.shape[0]]


def queue_infonce(
  q: jax.Array, k: jax.Array, queue: jax.Array, temperature: float
) -> tuple[jax.Array, jax.Array]:
  """MoCo's InfoNCE: query i against its key i (positive) and every queued key (negatives).

  q, k: (B, D) unit rows; queue: (K, D) unit rows. Returns (mean loss, top-1 accuracy).
  """
  pos = (q * k).sum(axis=-1, keepdims=True)
  logits = jnp.concatenate([pos, q @ queue.T], axis=-1) / temperature
  labels = jnp.zeros(q.shape[0], jnp.int32)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  return loss, (logits.argmax(axis=-1) == 0).mean()


class MoCo(Method):
  """MoCo with the trajectory as a picture: query encoder on trajectories, key encoder on images.

  As the paper did, the trajectory is converted to an image first: its raster by the dataset's
  own rasteriser (inputs.trajectory_raster), with that raster's box, so both modalities are a
  picture with a box and one network (ImageBoxCNN) serves both sides. The query encoder
  (trained) embeds trajectories; the key encoder, its momentum copy, embeds images (with their
  box). Evaluation embeds each side with its own encoder. Loss: InfoNCE of each query against
  its image's key and the queue of past keys (temperature `train.moco_temperature`, 0.07); the
  queue (`model.moco_queue_size` keys) is first in, first out.

  The key encoder's pace is scaled to the run (issue 15): its momentum m is set so that its time
  constant 1 / (1 - m) is `train.moco_key_window` of the run's training steps. MoCo's 0.999 is a
  1,000-step memory, made for runs of hundreds of thousands of steps; at a fixed m a 390-step run
  leaves the key encoder 68 % at its initial weights, and a 2,340-step run makes it lag the query
  encoder by 43 % of the run. The window is chosen on the validation split
  (benchmarks/results/tuning.md).

  params = the query encoder; extra = {'key': the key encoder, 'queue': (K, D)}. The update
  order is the official implementation's (moco/builder.py, forward()): each step first moves
  the key encoder towards the current query encoder, theta_k <- m theta_k + (1 - m) theta_q
  (m = `key_momentum()`), then computes the keys with it, the loss and the query
  encoder's gradient, and enqueues the keys. All of it happens inside `loss`, from the params
  it is given, so the contract (new extra from loss's aux) gives exactly that order, no lag.
  """

  def __init__(
    self,
    model: ml_collections.ConfigDict,
    train: ml_collections.ConfigDict,
    normalisation: Normalisation,
    total_steps: int | None = None,
  ):
    """total_steps: the training run's length, which sets the key momentum; None where the
    method only embeds (evaluation, search), which does not read it."""
    self.model = model
    self.train = train
    self.total_steps = total_steps
    self.encoder = baselines.ImageBoxCNN(
      channels=tuple(model.shape_channels),
      hidden=model.branch_dim,
      box_embed=model.box_embed,
      out_dim=model.embed_dim,
      coord_center=normalisation.center,
      coord_scale=normalisation.scale,
    )

  def key_momentum(self) -> float:
    """m of theta_k <- m theta_k + (1 - m) theta_q, from `train.moco_key_window` and the run's
    length: 1 - 1 / (window * total_steps), a time constant of at least one step (m >= 0)."""
    if self.total_steps is None:
      raise ValueError(
        "MoCo's key momentum is set by the run's length: build the method with total_steps "
        '(train.py does)'
      )
    return 1.0 - 1.0 / max(self.train.moco_key_window * self.total_steps, 1.0)

  def trajectory_picture(self, trajectory: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The trajectory converted to an image: (raster in [0, 1] (B, S, S, 1), box (B, 4))."""
    m = self.model
    return inputs.trajectory_raster(
      trajectory.astype(jnp.float32),
      m.traj_raster_size,
      m.traj_raster_margin,
      m.traj_raster_line_width,
    )

  def init(self, rng: jax.Array, batch: Batch) -> tuple[PyTree, PyTree]:
    rng_p, rng_q = jax.random.split(rng)
    params = self.encoder.init(rng_p, *self.trajectory_picture(batch['trajectory']))['params']
    queue = jax.random.normal(rng_q, (self.model.moco_queue_size, self.model.embed_dim))
    extra = {'key': jax.tree.map(jnp.copy, params), 'queue': losses.l2_normalise(queue)}
    return params, extra

  def _embed(self, params: PyTree, picture: jax.Array, box: jax.Array) -> jax.Array:
    return losses.l2_normalise(self.encoder.apply({'params': params}, picture, box))

  def embed_trajectories(self, params: PyTree, extra: PyTree, trajectory: jax.Array) -> jax.Array:
    return self._embed(params, *self.trajectory_picture(trajectory))

  def embed_images(
    self, params: PyTree, extra: PyTree, image: jax.Array, box: jax.Array
  ) -> jax.Array:
    return self._embed(extra['key'], inputs.image_to_float(image), box)

  def loss(self, params, extra, batch, rng, progress):
    key_params = momentum_update(extra['key'], params, self.key_momentum())
    q = self.embed_trajectories(params, extra, batch['trajectory'])
    k = jax.lax.stop_gradient(
      self.embed_images({}, {'key': key_params}, batch['image'], batch['box'])
    )
    loss, acc = queue_infonce(q, k, extra['queue'], self.train.moco_temperature)
    new_extra = {'key': key_params, 'queue': enqueue(extra['queue'], k)}
    return loss, ({'loss': loss, 'contrastive': loss, 'batch_acc_t2i': acc}, new_extra)

  def optimizer(self, total_steps: int) -> optax.GradientTransformation:
    return encoder_optimizer(self.train, total_steps)
