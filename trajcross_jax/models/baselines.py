"""The baselines' inputs and small networks (Table I: MoCo, ACMR, Corr-AE, DBRLM; CCA is linear).

Every baseline sees the same inputs: the trajectory as its 20 points (flattened and normalised
like TRAJCROSS's) or, where a method is image-based on both sides, its raster; the image always
with its box, as the paper did "to make a fair comparison" (PROTOCOL.md section 7).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from trajcross_jax.models import inputs
from trajcross_jax.models.shape import SequenceCNN, ShapeCNN


def flat_trajectory(points: jax.Array, center: tuple[float, float], scale: float) -> jax.Array:
  """(B, M, 2) metres -> (B, 2M): the points normalised over the scene, x and y interleaved."""
  xy = inputs.normalise_coords(points.astype(jnp.float32), center, scale)
  return xy.reshape(xy.shape[0], -1)


def flat_image(
  image: jax.Array, box: jax.Array, center: tuple[float, float], scale: float, pool: int
) -> jax.Array:
  """(B, H, W, 1) uint8 and (B, 4) metres -> (B, (H/pool)(W/pool) + 4).

  The image in [0, 1] averaged over pool x pool blocks and flattened row by row, then the box
  normalised like the points.
  """
  x = inputs.image_to_float(image)
  b, h, w, _ = x.shape
  if h % pool or w % pool:
    raise ValueError(f'image_pool={pool} does not divide the {h}x{w} image')
  x = x.reshape(b, h // pool, pool, w // pool, pool).mean(axis=(2, 4)).reshape(b, -1)
  return jnp.concatenate([x, inputs.normalise_box(box.astype(jnp.float32), center, scale)], -1)


class FlatFeatures:
  """The flat views of a pair that CCA, ACMR and Corr-AE read, in one scene frame.

  trajectory: flat_trajectory, the normalised points (2M features); image: flat_image, the
  image pooled by `image_pool` with its normalised box.
  """

  def __init__(self, image_pool: int, center: tuple[float, float], scale: float):
    self.image_pool, self.center, self.scale = image_pool, center, scale

  def trajectory(self, trajectory: jax.Array) -> jax.Array:
    return flat_trajectory(trajectory, self.center, self.scale)

  def image(self, image: jax.Array, box: jax.Array) -> jax.Array:
    return flat_image(image, box, self.center, self.scale, self.image_pool)


class MLP(nn.Module):
  """Dense layers with ReLU between them; the last layer is linear.

  Attributes:
    features: widths of the layers, the last one the output.
  """

  features: Sequence[int]
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i, f in enumerate(self.features):
      x = nn.Dense(f, dtype=self.dtype, name=f'dense{i}')(x)
      if i < len(self.features) - 1:
        x = nn.relu(x)
    return x


class ImageBoxCNN(nn.Module):
  """A picture in [0, 1] (B, H, W, 1) with its box (B, 4) metres -> (B, out_dim).

  The stride-2 CNN of TRAJCROSS's shape branch (ShapeCNN) over the pixels, the normalised box
  through a Dense, both fused by a Dense. MoCo runs it on both sides (the trajectory's raster
  with that raster's box, and the image with its box); DBRLM on the image side.
  """

  channels: Sequence[int] = (32, 64, 128, 128)
  hidden: int = 128
  box_embed: int = 64
  out_dim: int = 128
  # The scene frame (data/normalisation.py); methods set it from the training data.
  coord_center: tuple[float, float] = (0.0, 0.0)
  coord_scale: float = 1.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, picture: jax.Array, box: jax.Array) -> jax.Array:
    v = nn.relu(ShapeCNN(self.channels, self.hidden, self.dtype, name='cnn')(picture))
    box_n = inputs.normalise_box(box.astype(jnp.float32), self.coord_center, self.coord_scale)
    b = nn.relu(nn.Dense(self.box_embed, dtype=self.dtype, name='box_embed')(box_n))
    return nn.Dense(self.out_dim, dtype=self.dtype, name='out')(jnp.concatenate([v, b], -1))


class PointSequenceCNN(nn.Module):
  """A trajectory (B, M, 2) metres -> (B, out_dim), as a sentence CNN reads words.

  Each normalised point through a Dense (the 'word embedding'), Kim-style convolutions of
  several heights max-pooled over time (SequenceCNN), then a Dense: DBRLM's text CNN with
  points in place of words.
  """

  point_embed: int = 64
  heights: Sequence[int] = (2, 3, 4, 5)
  features: int = 64
  out_dim: int = 128
  # The scene frame (data/normalisation.py); methods set it from the training data.
  coord_center: tuple[float, float] = (0.0, 0.0)
  coord_scale: float = 1.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, points: jax.Array) -> jax.Array:
    xy = inputs.normalise_coords(points.astype(jnp.float32), self.coord_center, self.coord_scale)
    h = nn.relu(nn.Dense(self.point_embed, dtype=self.dtype, name='point_embed')(xy))
    h = SequenceCNN(self.heights, self.features, self.dtype, name='convs')(h)
    return nn.Dense(self.out_dim, dtype=self.dtype, name='out')(h)
