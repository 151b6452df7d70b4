"""The hard protocol's rules: noisy tracks and images drawn another way.

On the paper protocol every image is the project's rasteriser's drawing of its own trajectory,
so re-drawing each trajectory in each box finds its image every time (render_reference.py: top@1
100.0 on univ). These rules break that shortcut the way real data does, each one a field of
`HardOptions` that is off by default, so that each can be turned on and measured alone:

- measurement noise: the stored trajectory is a noisy observation of the track the image shows
  (independent per-point noise and a slowly drifting offset, GPS-like, sizes in metres);
- another renderer: the points as dots of random radius instead of the polyline;
- a Gaussian blur, pixel noise, and a smooth random background texture;
- other paths in the picture: the paths of other pedestrians seen during the trajectory's frames,
  drawn fainter by the same rules, so that the paired path is the brightest;
- resampling: the image shows the track sampled at another time step (and a random phase) than
  the trajectory's points.

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
from collections.abc import Sequence
from types import ModuleType

import jax
import numpy as np

from trajcross_jax.data import render
from trajcross_jax.data import tracks as tracks_lib
from trajcross_jax.data import windows as windows_lib

RENDERERS = ('line', 'dots')
# The dots renderer's radius range in pixels.
DOT_RADIUS_PX = (1.0, 2.5)
# The background texture is smooth noise on a grid of this many cells a side, interpolated.
BACKGROUND_GRID = 8
# Other pedestrians' paths kept per example (nearest first) for the crowd rule. In univ's test
# recording a 20-point image window shows a median of 12 others (32 at the 90th percentile):
# the nearest 8 are the ones most like the paired path, and each slot costs a drawing.
CROWD_SLOTS = 8


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
    crowd: brightness of the other pedestrians' paths (up to CROWD_SLOTS, nearest first) relative
      to the paired path's, in [0, 1); 0 draws none. They are drawn from their true tracks by the
      same renderer and width, and the image keeps the brightest ink at each pixel.
    resample_step: 0, or the time step (in the trajectory's steps) at which the image's track is
      sampled: the renderer draws the track at times (phase + k) * resample_step, k = 0, 1, ...,
      interpolated linearly between the points, phase ~ U(0, 1) per image, times past the last
      point held at it.
  """

  noise_m: float = 0.0
  drift_m: float = 0.0
  renderer: str = 'line'
  blur_px: float = 0.0
  pixel_noise: float = 0.0
  background: float = 0.0
  crowd: float = 0.0
  resample_step: float = 0.0

  def __post_init__(self):
    if self.renderer not in RENDERERS:
      raise ValueError(f'renderer must be one of {RENDERERS}, got {self.renderer!r}')
    for field in (
      'noise_m',
      'drift_m',
      'blur_px',
      'pixel_noise',
      'background',
      'crowd',
      'resample_step',
    ):
      value = getattr(self, field)
      if not isinstance(value, numbers.Real) or isinstance(value, bool) or value < 0:
        raise ValueError(f'{field} must be a number >= 0, got {value!r}')
    if self.crowd >= 1:  # The paired path must stay the brightest, or the pair is ill-defined.
      raise ValueError(
        f'crowd must be below 1 (the paired path is the brightest), got {self.crowd}'
      )

  @property
  def active(self) -> bool:
    """Whether any rule departs from the paper protocol."""
    return self != HardOptions()


# No hard rule: the paper protocol.
PAPER = HardOptions()
# The rules of the builder's '_hard' configs. Metres and pixels are those of univ: a window of
# 20 points spans about 2-10 m, so an image pixel is about 0.05-0.3 m. The noise sizes are those
# of a second tracker on the same video, and keep the task well posed: ranking by the exact
# likelihood of each trajectory given every image's true track (noise_oracle.py, which knows
# more than any image shows) reaches top@1 88 / 90 on univ's test split at 0.1 m and 0.2 m,
# and only 68 / 73 at the first sizes, 0.2 m and 0.5 m (README "The hard protocol").
HARD = HardOptions(
  noise_m=0.1,
  drift_m=0.2,
  renderer='dots',
  blur_px=1.0,
  pixel_noise=12.0,
  background=40.0,
  crowd=0.5,
  resample_step=1.5,
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
    'phase': rng.uniform(size=batch),
  }


def unit_draws_jax(key: jax.Array, batch: int, points: int, size: int) -> dict:
  """The same random inputs as `unit_draws`, from a JAX key (same distributions)."""
  k = jax.random.split(key, 6)
  return {
    'noise': jax.random.normal(k[0], (batch, points, 2)),
    'drift': jax.random.normal(k[1], (batch, 2, 2)),
    'radius': jax.random.uniform(k[2], (batch,)),
    'pixels': jax.random.normal(k[3], (batch, size, size)),
    'background': jax.random.normal(k[4], (batch, BACKGROUND_GRID, BACKGROUND_GRID)),
    'phase': jax.random.uniform(k[5], (batch,)),
  }


def observe(points, options: HardOptions, draws: dict, xp: ModuleType = np):
  """A noisy observation (B, M, 2) of tracks (B, M, 2): per-point noise plus a drifting offset."""
  points = xp.asarray(points)
  noise, drift = (xp.asarray(draws[k], dtype=points.dtype) for k in ('noise', 'drift'))
  m = points.shape[1]
  t = (xp.arange(m, dtype=points.dtype) / max(m - 1, 1))[None, :, None]
  offset = drift[:, None, 0, :] + t * drift[:, None, 1, :]
  return points + options.noise_m * noise + options.drift_m * offset


def draw(points, windows, widths, options: HardOptions, draws: dict, size: int, xp=np, crowd=None):
  """Images (B, size, size) float in [0, 255] of tracks (B, M, 2) by the hard rules.

  The renderer draws the track in its window (render.py's coordinates), and with the crowd rule
  the other paths `crowd` (B, CROWD_SLOTS, M, 2; NaN slots are empty) at `options.crowd` of its
  brightness, every path resampled first if the rule says so; then the blur, the background and
  the pixel noise, clipped to [0, 255]. Not rounded (render.to_uint8 does).

  Raises:
    ValueError: the crowd rule is on and `crowd` is not given.
  """
  points = xp.asarray(points)
  paths = points[:, None]
  brightness = xp.ones((len(points), 1), dtype=points.dtype)
  if options.crowd > 0:
    if crowd is None:
      raise ValueError('the crowd rule draws the other paths: pass crowd (B, slots, M, 2)')
    crowd = xp.asarray(crowd, dtype=points.dtype)
    shown = ~xp.isnan(crowd[:, :, 0, 0])  # A slot is all NaN or has every point.
    paths = xp.concatenate([paths, xp.where(xp.isnan(crowd), 0, crowd)], axis=1)
    brightness = xp.concatenate([brightness, options.crowd * shown.astype(points.dtype)], axis=1)
  batch, per_image = paths.shape[:2]
  flat = paths.reshape((batch * per_image,) + paths.shape[2:])
  if options.resample_step > 0:
    phase = xp.repeat(xp.asarray(draws['phase'], dtype=points.dtype), per_image)
    flat = resample(flat, options.resample_step, phase, xp=xp)
  windows = xp.repeat(xp.asarray(windows), per_image, axis=0)
  if options.renderer == 'line':
    ink = render.render_polylines(flat, windows, xp.repeat(xp.asarray(widths), per_image), size, xp)
  else:
    lo, hi = DOT_RADIUS_PX
    radius = lo + (hi - lo) * xp.asarray(draws['radius'])
    ink = render_dots(flat, windows, xp.repeat(radius, per_image), size, xp=xp)
  ink = ink.reshape((batch, per_image, size, size))
  # The brightest ink at each pixel: where paths cross, the paired one (brightness 1) shows.
  image = (ink * brightness[:, :, None, None]).max(axis=1)
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


def resampled_length(points: int, step: float) -> int:
  """How many points `resample` gives for tracks of `points` points."""
  return int((points - 1) / step) + 1


def resample(points, step: float, phase, xp: ModuleType = np):
  """Tracks (B, M, 2) sampled at times (phase + k) * step, k < resampled_length(M, step), in
  units of their own steps: linear between points, held at the last point past it."""
  points = xp.asarray(points)
  m = points.shape[1]
  k = xp.arange(resampled_length(m, step), dtype=points.dtype)
  times = xp.clip((xp.asarray(phase, dtype=points.dtype)[:, None] + k) * step, 0, m - 1)
  lo = xp.clip(xp.floor(times).astype(xp.int32), 0, m - 2)
  frac = (times - lo.astype(points.dtype))[..., None]
  start = xp.take_along_axis(points, lo[..., None], axis=1)
  end = xp.take_along_axis(points, lo[..., None] + 1, axis=1)
  return start + frac * (end - start)


def crowd_paths(
  tracks: Sequence[tracks_lib.Track], examples: windows_lib.Windows, slots: int = CROWD_SLOTS
) -> np.ndarray:
  """The other pedestrians each example's image may show, for the crowd rule.

  For each window, the tracks of other pedestrians of its recording seen during its frames, at
  those frames (linear between a track's own frames; before it appears or after it leaves, held
  at its first or last point, so the drawn path is what it walked meanwhile), nearest first by
  the least distance between such a path and the window's track at the same frame, ties by
  ped_id.

  Args:
    tracks: every track of the examples' recordings (the examples' own among them).
    examples: the windows.
    slots: how many paths to keep per example.

  Returns:
    float64 (N, slots, M, 2), metres; slots with no pedestrian are NaN.
  """
  by_source: dict[str, list[tracks_lib.Track]] = {}
  for track in tracks:
    by_source.setdefault(track.source, []).append(track)
  spans = {
    source: np.array([[t.frames[0], t.frames[-1]] for t in group])
    for source, group in by_source.items()
  }
  n, m = examples.xy.shape[:2]
  out = np.full((n, slots, m, 2), np.nan)
  for i in range(n):
    source, ped, first = str(examples.source[i]), int(examples.ped_id[i]), examples.start_frame[i]
    group = by_source[source]
    own = next(t for t in group if t.ped_id == ped and t.frames[0] <= first <= t.frames[-1])
    start = int(np.searchsorted(own.frames, first))
    frames, xy = own.frames[start : start + m], examples.xy[i]
    seen = (spans[source][:, 0] <= frames[-1]) & (spans[source][:, 1] >= frames[0])
    found = []
    for j in np.flatnonzero(seen):
      other = group[j]
      if other.ped_id == ped:
        continue
      path = np.stack([np.interp(frames, other.frames, other.xy[:, a]) for a in (0, 1)], axis=-1)
      closest = np.linalg.norm(path - xy, axis=-1).min()
      found.append((closest, other.ped_id, path))
    found.sort(key=lambda f: f[:2])
    for slot, (_, _, path) in enumerate(found[:slots]):
      out[i, slot] = path
  return out


def render_dots(points, windows, radius, size: int, xp: ModuleType = np):
  """Each point as an anti-aliased dot: 255 * clip(r + 0.5 - d, 0, 1), d the distance in pixels
  to the nearest point, r (B,) the radius. (B, M, 2) metres, windows (B, 3) -> (B, S, S)."""
  points = xp.asarray(points)
  u, v = render.to_pixels(points, windows, size, xp)
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
