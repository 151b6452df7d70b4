"""The cross-encoder: one trajectory and one image (with its box) seen together, one score.

The trajectory is drawn by the protocol's rasteriser into the image's own box, beside the image
as a second channel: where the pair is true the two drawings coincide up to the line's width; a
near-duplicate one frame away sits two or three pixels off, which a convolution at full
resolution sees and a global embedding of either side alone blurs away. One model scores both
directions (a trajectory query against candidate images, an image query against candidate
trajectories).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from trajcross_jax.data import render
from trajcross_jax.models.inputs import image_to_float
from trajcross_jax.models.shape import StridedConv


def pair_input(
  trajectories: jnp.ndarray,
  images: jnp.ndarray,
  boxes: jnp.ndarray,
  line_width: float,
  endpoint_width: float = 0.0,
) -> jnp.ndarray:
  """(B, M, 2) metres, (B, S, S, 1) uint8, (B, 4) boxes -> (B, S, S, C) in [0, 1]:
  the trajectory drawn in the image's box (channel 0) and the image (channel 1); with
  `endpoint_width` > 0, its first and its last point as dots that wide (channels 2 and 3)."""
  size = images.shape[1]
  trajectories = trajectories.astype(jnp.float32)
  boxes = boxes.astype(jnp.float32)
  # A box [x_left, y_top, x_right, y_bottom] is the window [x_left, y_bottom, side].
  windows = jnp.stack([boxes[:, 0], boxes[:, 3], boxes[:, 2] - boxes[:, 0]], axis=-1)

  def draw(points, width):
    widths = jnp.full(points.shape[:1], width, jnp.float32)
    return render.render_polylines(points, windows, widths, size=size, xp=jnp)[..., None] / 255.0

  channels = [draw(trajectories, line_width), image_to_float(images)]
  if endpoint_width > 0:
    channels += [
      draw(trajectories[:, :1], endpoint_width),
      draw(trajectories[:, -1:], endpoint_width),
    ]
  return jnp.concatenate(channels, axis=-1)


class CrossEncoder(nn.Module):
  """Stride-2 3x3 convolutions over the pair's two channels, mean and max pooled, an MLP.

  Attributes:
    stem: channels of a stride-1 3x3 convolution first (0: none), which sees the pair at full
      resolution before any striding.
    channels: output channels of each stride-2 convolution.
    hidden: width of the hidden Dense layer.
    line_width: the width in pixels the trajectory is drawn with.
    endpoint_width: > 0: the trajectory's first and last points are drawn too, as dots this
      wide in two channels of their own, so that the model knows which end is which. The pairs
      it mistakes most are one pedestrian's windows a frame or two apart, whose paths coincide
      but for their ends. 0: not drawn.
  """

  stem: int = 0
  channels: Sequence[int] = (16, 32, 64, 64)
  hidden: int = 64
  line_width: float = 2.0
  endpoint_width: float = 0.0

  @nn.compact
  def __call__(self, trajectories, images, boxes) -> jnp.ndarray:
    """(B,) match scores (logits): higher means the trajectory is the image's."""
    x = pair_input(trajectories, images, boxes, self.line_width, self.endpoint_width)
    if self.stem:
      x = nn.relu(nn.Conv(self.stem, (3, 3), name='stem')(x))
    for i, c in enumerate(self.channels):
      x = nn.relu(StridedConv(c, name=f'conv{i}')(x))
    # Mean and max: how much of the two drawings disagree, and where the worst of it is.
    x = jnp.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=-1)
    x = nn.relu(nn.Dense(self.hidden, name='hidden')(x))
    return nn.Dense(1, name='score')(x)[..., 0]
