"""What a method is: its models, its loss and its update rule, behind one interface.

TRAJCROSS and the paper's baselines all train through the same data pipeline, loop,
checkpoints and evaluation (train.py, evaluate.py); only what is here differs.
"""

import abc
from typing import Any

import jax
import ml_collections
import optax

PyTree = Any
Batch = dict[str, jax.Array]


def encoder_optimizer(
  train: ml_collections.ConfigDict, total_steps: int, warmup_steps: int = 0
) -> optax.GradientTransformation:
  """Global-norm clip, then AdamW (decay on kernels only) with warmup and cosine decay.

  A run shorter than the warmup still decays: the warmup is at most all but the last step.
  """
  warmup = max(min(warmup_steps, total_steps - 1), 0)
  schedule = optax.warmup_cosine_decay_schedule(
    0.0, train.learning_rate, warmup, max(total_steps, warmup + 1)
  )
  return optax.chain(
    optax.clip_by_global_norm(train.grad_clip),
    optax.adamw(schedule, weight_decay=train.weight_decay, mask=_kernels),
  )


def _kernels(params: PyTree) -> PyTree:
  """Weight decay on kernels only, not on biases or scalars such as the temperature."""
  return jax.tree.map(lambda x: x.ndim > 1, params)


def by_player(params: PyTree) -> PyTree:
  """optax.partition labels: each leaf labelled by its top-level key ('encoders', ...)."""
  return {k: jax.tree.map(lambda _, k=k: k, v) for k, v in params.items()}


class Method(abc.ABC):
  """A cross-modal retrieval method.

  `params` are trained by the optimiser; `extra` is the method's other state, carried in the
  train state and checkpoints (for example a momentum encoder or a queue of negatives).
  Retrieval scores are the dot products of what `embed_trajectories` and `embed_images` return.
  """

  @abc.abstractmethod
  def init(self, rng: jax.Array, batch: Batch) -> tuple[PyTree, PyTree]:
    """Returns (params, extra) for inputs shaped like `batch`."""

  @abc.abstractmethod
  def loss(
    self, params: PyTree, extra: PyTree, batch: Batch, rng: jax.Array, progress: jax.Array
  ) -> tuple[jax.Array, tuple[dict[str, jax.Array], PyTree]]:
    """Returns (scalar loss to descend, (metrics, new extra)) for a global batch.

    `progress` is the run's progress at this step, steps taken / total steps in [0, 1], for
    methods whose loss follows a schedule over the run (ACMR's reversal weight).
    """

  @abc.abstractmethod
  def optimizer(self, total_steps: int) -> optax.GradientTransformation:
    """The update rule for `params`, over `total_steps` training steps."""

  def fit(self, params: PyTree, extra: PyTree, source) -> tuple[PyTree, PyTree] | None:
    """Closed-form methods (CCA) solve for (params, extra) from the training split here.

    `source` is the training split (trajcross_jax.data.pipeline.Source). train() then saves
    the result as the final checkpoint without a gradient loop. Gradient methods keep this
    default, None.
    """
    return None

  @abc.abstractmethod
  def embed_trajectories(self, params: PyTree, extra: PyTree, trajectory: jax.Array) -> jax.Array:
    """(B, M, 2) metres -> (B, D) embeddings."""

  @abc.abstractmethod
  def embed_images(
    self, params: PyTree, extra: PyTree, image: jax.Array, box: jax.Array
  ) -> jax.Array:
    """(B, H, W, 1) uint8 and (B, 4) metres -> (B, D) embeddings."""
