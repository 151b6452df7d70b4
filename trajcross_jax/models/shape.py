"""Shape CNN: the convolutional stack shared by both towers' shape branches."""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp


def _same_padding(size: int) -> tuple[int, int]:
  """XLA's 'SAME' padding of a 3-tap stride-2 window: ceil(size / 2) outputs."""
  total = max(2 * (-(-size // 2) - 1) + 3 - size, 0)
  return total // 2, total - total // 2


class StridedConv(nn.Module):
  """A 3x3 stride-2 'SAME' convolution computed as nine strided slices and one matmul.

  The same function and parameters (kernel (3, 3, C, F), bias) as nn.Conv(F, (3, 3),
  strides=2), but XLA's CPU convolution (its backward pass above all) is about twice as slow
  as a plain matmul over the gathered taps (benchmarks/train_speed.py).
  """

  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    _, h, w, c = x.shape
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (3, 3, c, self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    out_h, out_w = -(-h // 2), -(-w // 2)
    xp = jnp.pad(x, ((0, 0), _same_padding(h), _same_padding(w), (0, 0)))
    taps = [
      xp[:, i : i + 2 * out_h - 1 : 2, j : j + 2 * out_w - 1 : 2]
      for i in range(3)
      for j in range(3)
    ]
    patches = jnp.concatenate(taps, axis=-1).astype(self.dtype)
    return patches @ kernel.reshape(9 * c, self.features).astype(self.dtype) + bias


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
      x = StridedConv(c, self.dtype, name=f'conv{i}')(x)
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
