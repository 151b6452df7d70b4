"""The hard protocol's rules: noisy tracks and images drawn another way.

On the paper protocol every image is the project's rasteriser's drawing of its own trajectory,
so re-drawing each trajectory in each box finds its image every time (render_reference.py: top@1
100.0 on univ). These rules break that shortcut the way real data does, each one a field of
`HardOptions` that is off by default, so that each can be turned on and measured alone:

- measurement noise: the stored trajectory is a noisy observation of the track the image shows
  (independent per-point noise and a slowly drifting offset, GPS-like, sizes in metres);
- another renderer: the points as dots of random radius instead of the polyline;
- a Gaussian blur, pixel noise, and a smooth random background texture.

The maths is written once for numpy (the dataset builder) and jax.numpy (re-drawing training
images on the device), as render.py is: every random quantity comes in as a unit draw
(`unit_draws` for numpy, `unit_draws_jax` for a JAX key), so the two back ends compute the same
function of the same draws. The builder keys each example's draws by the same (seed, recording,
pedestrian, first frame) as its image window (`example_draws`), so a build is reproducible and
independent of the order and chunking of examples.

The `univ_hard` and `synthetic_hard` configs of the builder apply `HARD`.
"""

import dataclasses
import numbers
from types import ModuleType

import jax
import numpy as np

from trajcross_jax.data import render

RENDERERS = ('line', 'dots')
# The dots renderer's radius range in pixels.
DOT_RADIUS_PX = (1.0, 2.5)
# The background texture is smooth noise on a grid of this many cells a side, interpolated.
BACKGROUND_GRID = 8


@dataclasses.dataclass(frozen=True)
class HardOptions:
  """Which hard rules apply, and how strongly. The defaults are the paper protocol.

  Attributes:
    noise_m: standard deviation of independent per-point noise on the trajectory, metres.
    drift_m: standard deviation of a drifting offset added to every point: offset(t) =
      a + (t / (M - 1)) b, a and b drawn per window and axis, metres.
    renderer: 'line' (the protocol's polyline) or 'dots' (each point a dot of random radius).
    blur_px: standard deviation of a Gaussian blur of the image, pixels.
    pixel_noise: standard deviation of Gaussian pixel noise, in 0-255 levels.
    background: amplitude of a smooth random background texture, in 0-255 levels.
  """

  noise_m: float = 0.0
  drift_m: float = 0.0
  renderer: str = 'line'
  blur_px: float = 0.0
  pixel_noise: float = 0.0
  background: float = 0.0

  def __post_init__(self):
    if self.renderer not in RENDERERS:
      raise ValueError(f'renderer must be one of {RENDERERS}, got {self.renderer!r}')
    for field in ('noise_m', 'drift_m', 'blur_px', 'pixel_noise', 'background'):
      value = getattr(self, field)
      if not isinstance(value, numbers.Real) or isinstance(value, bool) or value < 0:
        raise ValueError(f'{field} must be a number >= 0, got {value!r}')

  @property
  def active(self) -> bool:
    """Whether any rule departs from the paper protocol."""
    return self != HardOptions()


# No hard rule: the paper protocol.
PAPER = HardOptions()
# The rules of the builder's '_hard' configs. Metres and pixels are those of univ: a window of
# 20 points spans about 5-10 m, so an image pixel is about 0.1-0.3 m.
HARD = HardOptions(
  noise_m=0.2, drift_m=0.5, renderer='dots', blur_px=1.0, pixel_noise=12.0, background=40.0
)
# The last entry of the seed of an example's hard draws: render.draw_image_params seeds its
# window and width with the first four, so the two streams differ.
_STREAM = 1


def example_draws(
  seed: int, file_code: int, ped_id: int, first_frame: int, points: int, size: int
) -> dict:
  """One example's unit draws (a batch of one), keyed like render.draw_image_params."""
  return unit_draws(
    np.random.default_rng([seed, file_code, ped_id, first_frame, _STREAM]), 1, points, size
  )


def stack_draws(draws: list[dict]) -> dict:
  """Examples' draws (each a batch of one) as one batch."""
  return {k: np.concatenate([d[k] for d in draws]) for k in draws[0]}


def unit_draws(rng: np.random.Generator, batch: int, points: int, size: int) -> dict:
  """The random inputs of `observe` and `draw` for a batch, from a numpy generator."""
  return {
    'noise': rng.standard_normal((batch, points, 2)),
    'drift': rng.standard_normal((batch, 2, 2)),
    'radius': rng.uniform(size=batch),
    'pixels': rng.standard_normal((batch, size, size)),
    'background': rng.standard_normal((batch, BACKGROUND_GRID, BACKGROUND_GRID)),
  }


def unit_draws_jax(key: jax.Array, batch: int, points: int, size: int) -> dict:
  """The same random inputs as `unit_draws`, from a JAX key (same distributions)."""
  k = jax.random.split(key, 5)
  return {
    'noise': jax.random.normal(k[0], (batch, points, 2)),
    'drift': jax.random.normal(k[1], (batch, 2, 2)),
    'radius': jax.random.uniform(k[2], (batch,)),
    'pixels': jax.random.normal(k[3], (batch, size, size)),
    'background': jax.random.normal(k[4], (batch, BACKGROUND_GRID, BACKGROUND_GRID)),
  }


def observe(points, options: HardOptions, draws: dict, xp: ModuleType = np):
  """A noisy observation (B, M, 2) of tracks (B, M, 2): per-point noise plus a drifting offset."""
  points = xp.asarray(points)
  noise, drift = (xp.asarray(draws[k], dtype=points.dtype) for k in ('noise', 'drift'))
  m = points.shape[1]
  t = (xp.arange(m, dtype=points.dtype) / max(m - 1, 1))[None, :, None]
  offset = drift[:, None, 0, :] + t * drift[:, None, 1, :]
  return points + options.noise_m * noise + options.drift_m * offset


def draw(points, windows, widths, options: HardOptions, draws: dict, size: int, xp=np):
  """Images (B, size, size) float in [0, 255] of tracks (B, M, 2) by the hard rules.

  The renderer draws the points in their windows (render.py's coordinates); then the blur,
  the background and the pixel noise, clipped to [0, 255]. Not rounded (render.to_uint8 does).
  """
  if options.renderer == 'line':
    image = render.render_polylines(points, windows, widths, size, xp=xp)
  else:
    lo, hi = DOT_RADIUS_PX
    radius = lo + (hi - lo) * xp.asarray(draws['radius'])
    image = render_dots(points, windows, radius, size, xp=xp)
  dtype = image.dtype  # Every effect keeps it: float64 in the builder, float32 under jit.
  if options.blur_px > 0:
    k = xp.asarray(gaussian_matrix(size, options.blur_px), dtype=dtype)
    image = k @ image @ k.T
  if options.background > 0:
    u = xp.asarray(interpolation_matrix(size, BACKGROUND_GRID), dtype=dtype)
    texture = u @ xp.asarray(draws['background'], dtype=dtype) @ u.T
    image = image + options.background * texture
  if options.pixel_noise > 0:
    image = image + options.pixel_noise * xp.asarray(draws['pixels'], dtype=dtype)
  return xp.clip(image, 0, 255)


def render_dots(points, windows, radius, size: int, xp: ModuleType = np):
  """Each point as an anti-aliased dot: 255 * clip(r + 0.5 - d, 0, 1), d the distance in pixels
  to the nearest point, r (B,) the radius. (B, M, 2) metres, windows (B, 3) -> (B, S, S)."""
  points, windows = xp.asarray(points), xp.asarray(windows)
  x0, y0, s = windows[:, 0, None], windows[:, 1, None], windows[:, 2, None]
  u = (points[..., 0] - x0) * (size / s)
  v = (y0 + s - points[..., 1]) * (size / s)
  centres = xp.arange(size, dtype=points.dtype) + 0.5
  du = centres[None, None, None, :] - u[:, :, None, None]
  dv = centres[None, None, :, None] - v[:, :, None, None]
  distance = xp.sqrt((du * du + dv * dv).min(axis=1))
  return 255 * xp.clip(xp.asarray(radius)[:, None, None] + 0.5 - distance, 0, 1)


def gaussian_matrix(size: int, sigma: float) -> np.ndarray:
  """(size, size) rows of a normalised Gaussian of `sigma` pixels: K @ image @ K.T blurs."""
  i = np.arange(size)
  k = np.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma) ** 2)
  return k / k.sum(axis=1, keepdims=True)


def interpolation_matrix(size: int, grid: int) -> np.ndarray:
  """(size, grid): linear interpolation of `grid` cell centres at the pixel centres."""
  at = (np.arange(size) + 0.5) * grid / size - 0.5
  lo = np.clip(np.floor(at).astype(int), 0, grid - 1)
  hi = np.clip(lo + 1, 0, grid - 1)
  frac = np.clip(at - lo, 0, 1)
  u = np.zeros((size, grid))
  u[np.arange(size), lo] += 1 - frac
  u[np.arange(size), hi] += frac
  return u
