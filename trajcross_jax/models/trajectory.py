"""Trajectory encoder, paper Eq. (1)-(4)."""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from trajcross_jax.models import inputs
from trajcross_jax.models.shape import SequenceCNN, ShapeCNN

SHAPE_BRANCHES = ('raster', 'seqcnn', 'none')


class TrajectoryEncoder(nn.Module):
  """Embeds a trajectory (B, M, 2) in world metres.

  Position branch: Eq. (1) a Dense per point, Eq. (2) Kim-style convolutions of several
  heights over the point sequence (each filter as wide as the point embedding), max-pooled
  over time and concatenated, then a Dense. Shape branch, Eq. (3): the trajectory rasterised
  by the dataset's own rasteriser (inside jit) and a CNN + Dense. Eq. (4): the embedding is
  the concatenation of both.

  Attributes:
    shape_branch: 'raster' (the paper), 'seqcnn' (the TrajCNN variant: a CNN over the raw
      point sequence in place of the raster) or 'none' (the onlyTraj variant).
  """

  point_embed: int = 64
  conv_heights: Sequence[int] = (2, 3, 4, 5)
  conv_features: int = 64
  shape_channels: Sequence[int] = (32, 64, 128, 128)
  branch_dim: int = 128
  shape_branch: str = 'raster'
  raster_size: int = 64
  raster_margin: float = 1.5
  raster_line_width: float = 2.0
  coord_channels: bool = False
  # The scene frame (data/normalisation.py); methods set it from the training data.
  coord_center: tuple[float, float] = (0.0, 0.0)
  coord_scale: float = 1.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, points: jnp.ndarray) -> jnp.ndarray:
    """(B, M, 2) metres -> (B, 2 * branch_dim)."""
    if self.shape_branch not in SHAPE_BRANCHES:
      raise ValueError(f'shape_branch must be one of {SHAPE_BRANCHES}, got {self.shape_branch!r}')
    points = points.astype(jnp.float32)
    xy = inputs.normalise_coords(points, self.coord_center, self.coord_scale)
    # Eq. (1)-(2): position branch.
    h = nn.relu(nn.Dense(self.point_embed, dtype=self.dtype, name='point_embed')(xy))
    h = SequenceCNN(self.conv_heights, self.conv_features, self.dtype, name='kim_convs')(h)
    # Without a shape branch the position branch alone fills the embedding (2 * branch_dim),
    # so that it still meets the image embedding in the same space.
    width = 2 * self.branch_dim if self.shape_branch == 'none' else self.branch_dim
    position = nn.Dense(width, dtype=self.dtype, name='position_out')(h)
    if self.shape_branch == 'none':
      return position
    if self.shape_branch == 'raster':
      # Eq. (3): the raster of the trajectory, by the same rasteriser as the images.
      raster, box = inputs.trajectory_raster(
        points, self.raster_size, self.raster_margin, self.raster_line_width
      )
      if self.coord_channels:
        raster = inputs.coord_channels(raster, box, self.coord_center, self.coord_scale)
      shape = ShapeCNN(self.shape_channels, self.branch_dim, self.dtype, name='shape_cnn')(raster)
    else:
      # TrajCNN: a CNN over the raw (normalised) point sequence instead of its raster.
      h = SequenceCNN(self.conv_heights, self.conv_features, self.dtype, name='seq_cnn')(xy)
      shape = nn.Dense(self.branch_dim, dtype=self.dtype, name='seq_out')(h)
    return jnp.concatenate([position, shape], axis=-1)
