"""What a method is: its models, its loss and its update rule, behind one interface.

TRAJCROSS and the paper's baselines all train through the same data pipeline, loop,
checkpoints and evaluation (train.py, evaluate.py); only what is here differs.
"""

import abc
from typing import Any

import jax
import optax

PyTree = Any
Batch = dict[str, jax.Array]


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
    self, params: PyTree, extra: PyTree, batch: Batch, rng: jax.Array
  ) -> tuple[jax.Array, tuple[dict[str, jax.Array], PyTree]]:
    """Returns (scalar loss to descend, (metrics, new extra)) for a global batch."""

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
