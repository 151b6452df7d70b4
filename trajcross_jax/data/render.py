"""The rasteriser: a trajectory's image (PROTOCOL.md section 4), the one place images are drawn.

The same formula serves the dataset builder (numpy, float64) and the model (jax.numpy inside
jax.jit, float32): pass the array module as `xp`.

Coordinates: a window [x0, y0, s] is the square [x0, x0 + s] x [y0, y0 + s] in metres, drawn as
size x size pixels, north up. Pixel (r, c) covers [x0 + c*s/size, x0 + (c+1)*s/size] x
[y0 + s - (r+1)*s/size, y0 + s - r*s/size], so its centre sits at (c + 0.5, r + 0.5) in pixel units
measured rightward from the left edge and downward from the top edge.
"""

from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np

# PROTOCOL.md section 4: the window's side over the trajectory's extent, its floor, line widths.
SCALE_RANGE = (1.25, 2.0)
MIN_SIDE = 2.0
WIDTHS = (1, 2, 3)
# How many trajectories the builder draws per numpy call: CHUNK_ELEMENTS / (segments * size**2),
# 32 trajectories of 20 points at 64 pixels. render_polylines holds a few arrays of batch *
# size**2 at a time; 32 a call ran about 15 % faster than 256 in one call on 2 cores.
CHUNK_ELEMENTS = 2_500_000


def to_pixels(points, windows, size: int, xp: ModuleType = np):
  """(B, M, 2) metres in (B, 3) windows [x0, y0, s] -> (u, v), each (B, M): pixel units of a
  `size`-pixel image of the window, u rightward from its left edge, v downward from its top
  edge (pixel i spans [i, i + 1), so its centre is at i + 0.5)."""
  points, windows = xp.asarray(points), xp.asarray(windows)
  x0, y0, s = windows[:, 0, None], windows[:, 1, None], windows[:, 2, None]
  u = (points[..., 0] - x0) * (size / s)
  v = (y0 + s - points[..., 1]) * (size / s)
  return u, v


def render_polylines(points, windows, widths, size: int = 64, xp: ModuleType = np):
  """Draws each trajectory as an anti-aliased polyline.

  Intensity = 255 * clip(w/2 + 0.5 - d, 0, 1), d = the distance in pixels from the pixel centre to
  the nearest segment of the polyline, so a trajectory that stands still still draws a dot.

  Args:
    points: (B, M, 2) trajectories in metres.
    windows: (B, 3) [x0, y0, s]: the lower-left corner and side of each image's square.
    widths: (B,) line widths in pixels.
    size: image side in pixels.
    xp: numpy or jax.numpy.

  Returns:
    (B, size, size) float intensities in [0, 255], not rounded (to_uint8 rounds).
  """
  points = xp.asarray(points)
  widths = xp.asarray(widths, dtype=points.dtype)
  u, v = to_pixels(points, windows, size, xp)
  if points.shape[1] == 1:  # One point: a zero-length segment draws the dot.
    u, v = xp.concatenate([u, u], axis=1), xp.concatenate([v, v], axis=1)
  # One segment a -> b at a time, (B, 1, 1) against pixel centres in rows (1, size, 1) and
  # columns (1, 1, size), keeping the running minimum of the squared distance. Broadcasting all
  # K segments at once and taking the min over them computes the same (bit for bit in numpy,
  # within 1e-3 of 255 in XLA's float32) but ran 12x slower under XLA on CPU (a min over a
  # non-minor axis: 38 against 3.1 ms for 256 images of 64 pixels) and 1.9x slower in numpy.
  centres = xp.arange(size, dtype=points.dtype) + 0.5

  def squared_distance(k):
    """(B, size, size) squared pixel distances to segment k."""
    au, av = u[:, k, None, None], v[:, k, None, None]
    du, dv = u[:, k + 1, None, None] - au, v[:, k + 1, None, None] - av
    pu, pv = centres[None, None, :] - au, centres[None, :, None] - av
    length2 = du * du + dv * dv
    # A repeated point is a zero-length segment: project onto its start instead of dividing by 0.
    safe_length2 = xp.where(length2 > 0, length2, 1)
    t = xp.clip((pu * du + pv * dv) / safe_length2, 0, 1)
    eu, ev = pu - t * du, pv - t * dv
    return eu * eu + ev * ev

  squared = squared_distance(0)
  if xp is np:
    for k in range(1, u.shape[1] - 1):
      squared = np.minimum(squared, squared_distance(k))
  else:
    # A loop, not unrolled: its result is materialised, so XLA cannot fuse the whole polyline
    # into each consumer (coord_channels' three channels recomputed it per pixel, 25x slower).
    squared = jax.lax.fori_loop(
      1, u.shape[1] - 1, lambda k, best: jnp.minimum(best, squared_distance(k)), squared
    )
  distance = xp.sqrt(squared)
  return 255 * xp.clip(widths[:, None, None] / 2 + 0.5 - distance, 0, 1)


def chunk_size(num_points: int, size: int = 64) -> int:
  """Trajectories to render per numpy call: 32 at the protocol's 20 points and 64 pixels."""
  return max(1, CHUNK_ELEMENTS // (max(num_points - 1, 1) * size * size))


def to_uint8(intensities, xp: ModuleType = np):
  """The stored image: intensities rounded to the nearest integer, as uint8."""
  return xp.round(intensities).astype(xp.uint8)


def box_from_windows(windows, xp: ModuleType = np):
  """The paper's I_loc box (..., 4) [x_left, y_top, x_right, y_bottom] of windows (..., 3)."""
  windows = xp.asarray(windows)
  x0, y0, s = windows[..., 0], windows[..., 1], windows[..., 2]
  return xp.stack([x0, y0 + s, x0 + s, y0], axis=-1)


def draw_image_params(
  points: np.ndarray, seed: int, file_code: int, ped_id: int, first_frame: int
) -> tuple[np.ndarray, int]:
  """One example's image window and line width, exactly as PROTOCOL.md section 4 draws them.

  Args:
    points: (M, 2) the trajectory in metres.
    seed: the dataset seed.
    file_code: the recording's code (windows.FILE_CODES).
    ped_id: the pedestrian id.
    first_frame: the frame of the trajectory's first point.

  Returns:
    (window [x0, y0, s] float64 (3,), line width in pixels).
  """
  rng = np.random.default_rng([seed, file_code, ped_id, first_frame])
  (xmin, ymin), (xmax, ymax) = points.min(axis=0), points.max(axis=0)
  u = rng.uniform(*SCALE_RANGE)
  s = max(max(xmax - xmin, ymax - ymin) * u, MIN_SIDE)
  x0 = rng.uniform(xmax - s, xmin)
  y0 = rng.uniform(ymax - s, ymin)
  width = rng.integers(WIDTHS[0], WIDTHS[-1] + 1)
  return np.array([x0, y0, s]), int(width)


def sample_image_params(key: jax.Array, points: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Fresh image windows and widths for a batch, from the protocol's distributions.

  The same distributions as draw_image_params (PROTOCOL.md section 4) but drawn from a JAX key,
  so training can re-draw its images on device every epoch (PROTOCOL.md section 8). Jittable.

  Args:
    key: a jax.random key.
    points: (B, M, 2) trajectories in metres.

  Returns:
    (windows (B, 3) float32 [x0, y0, s], widths (B,) int32 in {1, 2, 3}).
  """
  points = jnp.asarray(points, dtype=jnp.float32)
  lo, hi = points.min(axis=1), points.max(axis=1)
  extent = (hi - lo).max(axis=-1)
  key_u, key_x, key_y, key_w = jax.random.split(key, 4)
  batch = (points.shape[0],)
  u = jax.random.uniform(key_u, batch, minval=SCALE_RANGE[0], maxval=SCALE_RANGE[1])
  s = jnp.maximum(extent * u, MIN_SIDE)
  x0 = jax.random.uniform(key_x, batch, minval=hi[:, 0] - s, maxval=lo[:, 0])
  y0 = jax.random.uniform(key_y, batch, minval=hi[:, 1] - s, maxval=lo[:, 1])
  widths = jax.random.randint(key_w, batch, WIDTHS[0], WIDTHS[-1] + 1, dtype=jnp.int32)
  return jnp.stack([x0, y0, s], axis=-1), widths
