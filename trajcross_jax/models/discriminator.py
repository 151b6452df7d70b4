"""Modality classifier: the adversary of the minimax game."""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp


class Discriminator(nn.Module):
  """An MLP on an embedding; its logit says 'trajectory' (label 1) against 'image' (label 0)."""

  hidden: Sequence[int] = (256, 256)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
    """z: (B, D) -> logits (B,)."""
    for i, h in enumerate(self.hidden):
      z = nn.relu(nn.Dense(h, dtype=self.dtype, name=f'hidden{i}')(z))
    return nn.Dense(1, dtype=self.dtype, name='logit')(z)[:, 0]
