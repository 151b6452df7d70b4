"""How raw inputs (metres, uint8 pixels, boxes) become network inputs.

One place for the scene normalisation, so that the trajectory and image towers see
coordinates on the same scale.
"""

import jax.numpy as jnp

from trajcross_jax.data import render


def normalise_coords(xy: jnp.ndarray, center: tuple[float, float], scale: float) -> jnp.ndarray:
  """Maps world metres (..., 2) to roughly [-1, 1] over the scene."""
  return (xy - jnp.asarray(center, xy.dtype)) / scale


def normalise_box(box: jnp.ndarray, center: tuple[float, float], scale: float) -> jnp.ndarray:
  """Normalises a box [x_left, y_top, x_right, y_bottom] (..., 4) like the points."""
  corners = box.reshape(box.shape[:-1] + (2, 2))
  return normalise_coords(corners, center, scale).reshape(box.shape)


def image_to_float(image: jnp.ndarray) -> jnp.ndarray:
  """uint8 (B, H, W, 1) -> float in [0, 1]."""
  return image.astype(jnp.float32) / 255.0


def block_mean(x: jnp.ndarray, factor: int) -> jnp.ndarray:
  """Averages (B, H, W, C) over factor x factor blocks: (B, H / factor, W / factor, C).

  Averaging keeps the sub-block information of the coordinate channels: the mean of I*x over a
  block still locates the line's ink inside it.
  """
  b, h, w, c = x.shape
  if h % factor or w % factor:
    raise ValueError(f'a {h} x {w} image does not divide into {factor} x {factor} blocks')
  return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def coord_channels(
  intensity: jnp.ndarray, box: jnp.ndarray, center: tuple[float, float], scale: float
) -> jnp.ndarray:
  """Appends I*x and I*y channels: each lit pixel carries its world position.

  A convolution cannot tell where an image lies in the world from the pixels alone; the box
  says it. Multiplying the intensity by the normalised world coordinates of each pixel centre
  lets a CNN read absolute positions of the line (for example its centroid, a pooled I*x over
  a pooled I) without learning the box geometry. intensity: (B, H, W, 1) in [0, 1];
  box: (B, 4) metres. Returns (B, H, W, 3).
  """
  _, h, w, _ = intensity.shape
  x_left, y_top, x_right, y_bottom = (box[:, i] for i in range(4))
  cols = (jnp.arange(w) + 0.5) / w
  rows = (jnp.arange(h) + 0.5) / h
  x = x_left[:, None] + cols[None, :] * (x_right - x_left)[:, None]  # (B, W)
  y = y_top[:, None] - rows[None, :] * (y_top - y_bottom)[:, None]  # (B, H): north up
  x = (x - center[0]) / scale
  y = (y - center[1]) / scale
  xmap = jnp.broadcast_to(x[:, None, :, None], intensity.shape)
  ymap = jnp.broadcast_to(y[:, :, None, None], intensity.shape)
  return jnp.concatenate([intensity, intensity * xmap, intensity * ymap], axis=-1)


def trajectory_raster(
  points: jnp.ndarray, size: int, margin: float, line_width: float
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Rasterises trajectories (B, M, 2) into windows centred on them, as the image would be.

  The window is the square of side max(extent * margin, 2 m) (the protocol's minimum side)
  centred on the bounding box, drawn by the dataset's own rasteriser so that the shape branch
  sees the same kind of picture as the image tower. Returns (intensity (B, size, size, 1) in
  [0, 1], box (B, 4)).
  """
  lo = points.min(axis=1)
  hi = points.max(axis=1)
  side = jnp.maximum((hi - lo).max(axis=-1) * margin, 2.0)
  corner = (lo + hi) / 2 - side[:, None] / 2
  windows = jnp.concatenate([corner, side[:, None]], axis=-1)
  widths = jnp.full(points.shape[:1], line_width, points.dtype)
  raster = render.render_polylines(points, windows, widths, size=size, xp=jnp) / 255.0
  return raster[..., None], render.box_from_windows(windows, xp=jnp)
