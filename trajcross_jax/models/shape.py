"""Shape CNN: the convolutional stack shared by both towers' shape branches."""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp


class ShapeCNN(nn.Module):
  """3x3 stride-2 convolutions, global average pooling, Dense (paper Eq. (3) and Eq. (8)).

  Attributes:
    channels: output channels of each stride-2 convolution.
    features: size of the branch output.
    dtype: computation dtype.
  """

  channels: Sequence[int] = (32, 64, 128, 128)
  features: int = 128
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    for i, c in enumerate(self.channels):
      x = nn.Conv(c, (3, 3), strides=(2, 2), dtype=self.dtype, name=f'conv{i}')(x)
      x = nn.relu(x)
    x = x.mean(axis=(1, 2))
    return nn.Dense(self.features, dtype=self.dtype, name='out')(x)


class SequenceCNN(nn.Module):
  """Kim-style text CNN over a sequence: one convolution per height, max over time, concat.

  Used by the trajectory position branch (Eq. (2)) over the per-point embeddings, and by the
  TrajCNN variant's shape branch over the raw point sequence.

  Attributes:
    heights: temporal kernel heights; each spans the full feature width of the sequence.
    features: filters per height.
    dtype: computation dtype.
  """

  heights: Sequence[int] = (2, 3, 4, 5)
  features: int = 64
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: (B, M, D) -> (B, len(heights) * features)."""
    pooled = []
    for h in self.heights:
      y = nn.Conv(self.features, (h,), padding='VALID', dtype=self.dtype, name=f'conv_h{h}')(x)
      pooled.append(nn.relu(y).max(axis=1))
    return jnp.concatenate(pooled, axis=-1)
