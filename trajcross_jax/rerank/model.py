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
import jax
import jax.numpy as jnp

from trajcross_jax.data import render
from trajcross_jax.models.inputs import image_to_float
from trajcross_jax.models.shape import StridedConv

# Points continuing each end of the trajectory that `point_features` reads the image at.
EXTRA_POINTS = 3


def box_windows(boxes: jnp.ndarray) -> jnp.ndarray:
  """(B, 4) boxes [x_left, y_top, x_right, y_bottom] -> (B, 3) windows [x_left, y_bottom, side]
  (render.py's square windows)."""
  boxes = boxes.astype(jnp.float32)
  return jnp.stack([boxes[:, 0], boxes[:, 3], boxes[:, 2] - boxes[:, 0]], axis=-1)


def pixel_coords(points: jnp.ndarray, boxes: jnp.ndarray, size: int) -> jnp.ndarray:
  """(B, P, 2) metres in (B, 4) boxes -> (B, P, 2) (column, row) in the pixels of a `size`-pixel
  image of the box (render.to_pixels: north up, pixel i spans [i, i + 1))."""
  return jnp.stack(render.to_pixels(points, box_windows(boxes), size, jnp), axis=-1)


def extended_track(points: jnp.ndarray, extra: int) -> jnp.ndarray:
  """(B, M, 2) -> (B, M + 2 extra, 2): the trajectory with `extra` points continuing each end,
  one step apart, each end's step the mean of its last three (fewer when M < 4; M >= 2): where
  a window's image should show no more of its walker, and a neighbouring window's image does."""
  m = points.shape[1]
  span = min(3, m - 1)
  first = (points[:, 0] - points[:, span]) / span
  last = (points[:, -1] - points[:, -1 - span]) / span
  k = jnp.arange(1, extra + 1, dtype=points.dtype)[:, None]
  before = points[:, :1] + k[::-1] * first[:, None]  # Farthest first, so the order runs on.
  after = points[:, -1:] + k * last[:, None]
  return jnp.concatenate([before, points, after], axis=1)


def sample_features(features: jnp.ndarray, coords: jnp.ndarray, stride: int) -> jnp.ndarray:
  """Bilinear samples (B, P, C) of a (B, H, W, C) feature map at (B, P, 2) (column, row) pixel
  coordinates of the full-resolution image, the map's cell at row i and column j centred on
  column (j + 0.5) stride and row (i + 0.5) stride; cells outside the map count as zeros."""
  b, h, w, c = features.shape
  x = coords[..., 0] / stride - 0.5
  y = coords[..., 1] / stride - 0.5
  x0, y0 = jnp.floor(x), jnp.floor(y)
  flat = features.reshape(b, h * w, c)
  out = jnp.zeros(coords.shape[:2] + (c,), features.dtype)
  for dy in (0, 1):
    for dx in (0, 1):
      xi, yi = x0 + dx, y0 + dy
      inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
      weight = (1 - jnp.abs(x - xi)) * (1 - jnp.abs(y - yi)) * inside
      index = (jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)).astype(jnp.int32)
      out = out + jnp.take_along_axis(flat, index[..., None], axis=1) * weight[..., None]
  return out


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
  windows = box_windows(boxes)

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
    point_features: > 0: the feature maps of the first two stride-2 convolutions are also read
      at the trajectory's points and at EXTRA_POINTS continuing each end (bilinear), each point's
      features mapped to this many by a shared Dense and the whole sequence, in order, joined
      to the pooled features. Pooling forgets where along the path the drawings disagree; the
      sequence keeps it, so that the ends (where neighbouring windows differ) can count for
      more than the middle. 0: pooled features only.
  """

  stem: int = 0
  channels: Sequence[int] = (16, 32, 64, 64)
  hidden: int = 64
  line_width: float = 2.0
  endpoint_width: float = 0.0
  point_features: int = 0

  @nn.compact
  def __call__(self, trajectories, images, boxes) -> jnp.ndarray:
    """(B,) match scores (logits): higher means the trajectory is the image's."""
    x = pair_input(trajectories, images, boxes, self.line_width, self.endpoint_width)
    size = x.shape[1]
    if self.stem:
      x = nn.relu(nn.Conv(self.stem, (3, 3), name='stem')(x))
    sampled = []
    if self.point_features:
      points = extended_track(trajectories.astype(jnp.float32), EXTRA_POINTS)
      coords = pixel_coords(points, boxes.astype(jnp.float32), size)
    for i, c in enumerate(self.channels):
      x = nn.relu(StridedConv(c, name=f'conv{i}')(x))
      if self.point_features and i < 2:
        sampled.append(sample_features(x, coords, size // x.shape[1]))
    # Mean and max: how much of the two drawings disagree, and where the worst of it is.
    x = jnp.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=-1)
    if self.point_features:
      along = nn.relu(nn.Dense(self.point_features, name='points')(jnp.concatenate(sampled, -1)))
      x = jnp.concatenate([x, along.reshape(along.shape[0], -1)], axis=-1)
    x = nn.relu(nn.Dense(self.hidden, name='hidden')(x))
    return nn.Dense(1, name='score')(x)[..., 0]


class TrackMatcher(nn.Module):
  """Reads the track off the image, then scores a trajectory by its whitened distance to it.

  A CNN over the image (with two coordinate channels, so that where a dot is is as easy to read
  as what it is) regresses `hypotheses` tracks of M points in the box's unit square, mapped to
  metres by the box. A trajectory's score is the log of the summed Gaussian likelihoods
  -|W r|^2 / 2 of its residual r to each hypothesis, read forwards and backwards (an image of
  dots does not show which way its walker went), with the whitening W (M x M) learned. This is
  the structure of noise_oracle.py, which ranks by the exact likelihood given the true track,
  with the track and the noise's covariance learned. The trajectory enters only at the end, so
  a neighbouring window's shifted ends cost what their distance costs, not what a convolution
  happens to see.

  Attributes:
    channels: output channels of each stride-2 convolution.
    hidden: width of the hidden Dense layer after the flattened features.
    hypotheses: tracks read off each image; several let the model keep the ends' ambiguity
      (the resampling rule's unknown phase) rather than average it away.
    scale_m: the initial noise scale in metres (W starts as I / scale_m).
  """

  channels: Sequence[int] = (32, 64, 128, 128)
  hidden: int = 256
  hypotheses: int = 2
  scale_m: float = 1.0

  @nn.compact
  def __call__(self, trajectories, images, boxes) -> jnp.ndarray:
    """(B,) match scores: log densities of the trajectories given the images (track_scores)."""
    b, m = trajectories.shape[:2]
    size = images.shape[1]
    grid = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size
    coords = jnp.stack(jnp.meshgrid(grid, grid, indexing='ij'), axis=-1)
    x = jnp.concatenate([image_to_float(images), jnp.broadcast_to(coords, (b, size, size, 2))], -1)
    for i, c in enumerate(self.channels):
      x = nn.relu(StridedConv(c, name=f'conv{i}')(x))
    x = nn.relu(nn.Dense(self.hidden, name='hidden')(x.reshape(b, -1)))
    unit = 0.5 + nn.Dense(self.hypotheses * m * 2, name='track')(x).reshape(
      b, self.hypotheses, m, 2
    )
    windows = box_windows(boxes)
    tracks = windows[:, None, None, :2] + windows[:, None, None, 2:] * unit
    # W = exp(s) (I + A): the overall precision on a log scale, which Adam moves by a factor,
    # not by a step, per update; A shapes the noise's correlations along the window.
    log_precision = self.param('log_precision', lambda _: -jnp.log(jnp.float32(self.scale_m)))
    shape = self.param('whiten', nn.initializers.zeros, (m, m))
    whiten = jnp.exp(log_precision) * (jnp.eye(m) + shape)
    return track_scores(trajectories, tracks, whiten)


def track_scores(trajectories: jnp.ndarray, tracks: jnp.ndarray, whiten: jnp.ndarray):
  """(B,) log densities of (B, M, 2) trajectories under (B, H, M, 2) tracks (metres): an equal
  mixture over the H tracks and both directions of the trajectory of Gaussians whose precision
  along the window, per axis, is W^T W (W: (M, M)). A density, so that the true pairs' negative
  log likelihood is a loss that learns W's scale too (rerank/train.py, `nll_weight`)."""
  b, m = trajectories.shape[:2]
  h = tracks.shape[1]
  trajectories = trajectories.astype(jnp.float32)
  both = jnp.stack([trajectories, trajectories[:, ::-1]], axis=1)  # (B, 2, M, 2)
  residual = both[:, :, None] - tracks[:, None]  # (B, 2, H, M, 2)
  white = jnp.einsum('km,bdhmc->bdhkc', whiten, residual)
  exponent = -0.5 * jnp.sum(white * white, axis=(-2, -1))
  # Per axis: log |det W| - (M / 2) log(2 pi); two axes.
  normaliser = 2 * jnp.linalg.slogdet(whiten)[1] - m * jnp.log(2 * jnp.pi)
  return jax.nn.logsumexp(exponent.reshape(b, -1), axis=-1) - jnp.log(2.0 * h) + normaliser
