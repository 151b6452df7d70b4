"""Tests for trajcross_jax.data.render: the rasteriser and the image draws."""

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trajcross_jax.data import render, windows

# A 64 m window at the origin: one pixel per metre, pixel (r, c) centred at (c + 0.5, 63.5 - r).
UNIT_WINDOW = np.array([[0.0, 0.0, 64.0]])


def univ_dir() -> pathlib.Path:
  """The real univ files: $TRAJCROSS_UNIV_DIR, else <repo>/../shared/data/univ."""
  default = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'univ'
  return pathlib.Path(os.environ.get('TRAJCROSS_UNIV_DIR', default))


@pytest.fixture(scope='module')
def sample() -> windows.Windows:
  """64 real trajectories spread over the train pool."""
  files = {name: univ_dir() / f'{name}.txt' for name in windows.TRAIN_FILES}
  pool = windows.read_pool(files)
  return pool.take(np.linspace(0, len(pool) - 1, 64).astype(int))


def protocol_params(sample: windows.Windows, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  params = [
    render.draw_image_params(xy, seed, windows.FILE_CODES[source], ped_id, frame)
    for xy, source, ped_id, frame in zip(
      sample.xy, sample.source, sample.ped_id, sample.start_frame, strict=True
    )
  ]
  return np.stack([w for w, _ in params]), np.array([w for _, w in params])


def lit(points, width: int) -> np.ndarray:
  """The lit pixels (uint8 > 0) of one trajectory drawn in UNIT_WINDOW."""
  image = render.render_polylines(np.asarray(points, float)[None], UNIT_WINDOW, [width])
  return render.to_uint8(image)[0] > 0


def pixel_of(xy: np.ndarray, window: np.ndarray, size: int = 64) -> np.ndarray:
  """(row, column) of the pixel holding each point, by PROTOCOL.md section 4's pixel squares."""
  x0, y0, s = window
  column = np.floor((xy[:, 0] - x0) / s * size)
  row = np.floor((y0 + s - xy[:, 1]) / s * size)
  # A point on the window's right or bottom edge belongs to the last pixel.
  return np.clip(np.stack([row, column], axis=-1), 0, size - 1).astype(int)


def test_heading_north_is_drawn_upward():
  # From (32.5, 10.5) north to (32.5, 50.5): column 32, rows 53 (south) up to 13 (north).
  expected = np.zeros((64, 64), bool)
  expected[13:54, 32] = True
  np.testing.assert_array_equal(lit([[32.5, 10.5], [32.5, 30.5], [32.5, 50.5]], width=1), expected)


def test_heading_east_is_drawn_rightward():
  # From (10.5, 31.5) east to (40.5, 31.5): row 32, columns 10 (west) to 40 (east).
  expected = np.zeros((64, 64), bool)
  expected[32, 10:41] = True
  np.testing.assert_array_equal(lit([[10.5, 31.5], [40.5, 31.5]], width=1), expected)


@pytest.mark.parametrize('width', [1, 2, 3])
def test_a_line_carries_its_width_in_ink(width):
  # Along the east line, each column's intensities add up to 255 * width: the anti-aliasing
  # profile 255 * clip(w/2 + 0.5 - d, 0, 1) sampled at d = 0, 1, 2, ... pixels.
  image = render.render_polylines(np.array([[[10.5, 31.5], [40.5, 31.5]]]), UNIT_WINDOW, [width])
  np.testing.assert_allclose(image[0, :, 12:39].sum(axis=0), 255.0 * width)


def test_wider_lines_light_more_pixels():
  # A line a quarter pixel below row 32's centre is 0.25, 0.75, 1.25, 1.75 px from rows 32, 33,
  # 31, 34: width w lights those nearer than w/2 + 0.5, i.e. 2, 3, 4 rows of each column.
  line = [[10.5, 31.25], [40.5, 31.25]]
  assert [lit(line, width)[:, 25].sum() for width in (1, 2, 3)] == [2, 3, 4]
  assert lit(line, 1).sum() < lit(line, 2).sum() < lit(line, 3).sum()


@pytest.mark.parametrize('width, count', [(1, 1), (2, 9), (3, 9)])
@pytest.mark.parametrize('num_points', [1, 20])
def test_a_point_that_never_moves_draws_a_dot(width, count, num_points):
  # Pixels 0, 1 and sqrt(2) away are lit when nearer than w/2 + 0.5; 2 away is not for w = 3.
  image = render.render_polylines(
    np.tile([[[20.5, 40.5]]], (1, num_points, 1)), UNIT_WINDOW, [width]
  )
  lit_pixels = render.to_uint8(image[0]) > 0
  assert lit_pixels.sum() == count
  assert image[0, 23, 20] == 255  # The point's own pixel: row 63 - 40, column 20.
  rows, columns = np.nonzero(lit_pixels)
  assert rows.mean() == 23 and columns.mean() == 20


def test_full_intensity_on_the_line_and_none_far_away():
  image = render.render_polylines(np.array([[[10.5, 31.5], [40.5, 31.5]]]), UNIT_WINDOW, [2])[0]
  assert image[32, 20] == 255  # On the line.
  np.testing.assert_allclose(image[31, 20], 127.5)  # One pixel off: 255 * (1.5 - 1).
  np.testing.assert_allclose(image[31, 9], 255 * (1.5 - np.sqrt(2)))  # Diagonal to the end.
  assert image[30, 20] == 0 and image[32, 8] == 0  # Two pixels off: 1.5 - 2 < 0.


def test_every_point_lights_its_pixel(sample):
  image_windows, widths = protocol_params(sample)
  images = render.to_uint8(render.render_polylines(sample.xy, image_windows, widths))
  for image, xy, window in zip(images, sample.xy, image_windows, strict=True):
    rows, columns = pixel_of(xy, window).T
    assert np.all(image[rows, columns] > 0)


def test_nothing_lit_far_from_the_polyline(sample):
  image_windows, widths = protocol_params(sample)
  images = render.render_polylines(sample.xy, image_windows, widths)
  for image, xy, window, width in zip(images, sample.xy, image_windows, widths, strict=True):
    x0, y0, s = window
    rows, columns = np.nonzero(image > 0)
    centres = np.stack([x0 + (columns + 0.5) * s / 64, y0 + s - (rows + 0.5) * s / 64], axis=-1)
    # The polyline densely sampled (200 points a segment, so within 0.2 px): a slow, independent
    # distance.
    t = np.linspace(0, 1, 200)[:, None, None]
    dense = (xy[:-1] + t * (xy[1:] - xy[:-1])).reshape(-1, 2)
    metres = np.sqrt(((centres[:, None] - dense[None]) ** 2).sum(-1)).min(axis=1)
    assert np.all(metres * 64 / s <= width / 2 + 1)


def test_protocol_draws_in_protocol_order(sample):
  for xy, source, ped_id, frame in zip(
    sample.xy[:8], sample.source[:8], sample.ped_id[:8], sample.start_frame[:8], strict=True
  ):
    code = windows.FILE_CODES[source]
    window, width = render.draw_image_params(xy, 5, code, ped_id, frame)
    # PROTOCOL.md section 4, verbatim.
    rng = np.random.default_rng([5, code, ped_id, frame])
    w, h = xy.max(0) - xy.min(0)
    u = rng.uniform(1.25, 2.0)
    s = max(max(w, h) * u, 2.0)
    x0 = rng.uniform(xy[:, 0].max() - s, xy[:, 0].min())
    y0 = rng.uniform(xy[:, 1].max() - s, xy[:, 1].min())
    w_px = rng.integers(1, 4)
    np.testing.assert_array_equal(window, [x0, y0, s])
    assert width == w_px and isinstance(width, int)


def test_box_contains_the_trajectory(sample):
  image_windows, widths = protocol_params(sample)
  boxes = render.box_from_windows(image_windows)
  lo, hi = sample.xy.min(axis=1), sample.xy.max(axis=1)
  assert np.all(boxes[:, 0] <= lo[:, 0]) and np.all(boxes[:, 2] >= hi[:, 0])  # x_left, x_right
  assert np.all(boxes[:, 3] <= lo[:, 1]) and np.all(boxes[:, 1] >= hi[:, 1])  # y_bottom, y_top
  side = image_windows[:, 2]
  assert np.all(side >= 2.0)
  scale = side / (hi - lo).max(axis=-1)
  assert np.all((side == 2.0) | ((scale >= 1.25) & (scale <= 2.0)))
  assert set(widths) == {1, 2, 3}


def test_box_from_windows():
  np.testing.assert_array_equal(
    render.box_from_windows(np.array([[1.0, 2.0, 3.0]])), [[1, 5, 4, 2]]
  )


def test_chunk_size():
  assert render.chunk_size(20, 64) == 32
  assert render.chunk_size(20, 8) > render.chunk_size(20, 64) > render.chunk_size(200, 64) >= 1
  assert render.chunk_size(2, 4096) == 1


def test_to_uint8_rounds_to_nearest():
  result = render.to_uint8(np.array([0.0, 0.4, 0.6, 127.5001, 254.6, 255.0]))
  np.testing.assert_array_equal(result, [0, 0, 1, 128, 255, 255])
  assert result.dtype == np.uint8


def test_numpy_and_jitted_jax_agree(sample):
  image_windows, widths = protocol_params(sample)
  expected = render.render_polylines(sample.xy, image_windows, widths)
  draw = jax.jit(lambda p, w, d: render.render_polylines(p, w, d, xp=jnp))
  result = draw(sample.xy, image_windows, widths)
  assert result.dtype == jnp.float32 and expected.dtype == np.float64
  np.testing.assert_allclose(np.asarray(result), expected, atol=0.05)
  to_uint8 = jax.jit(lambda x: render.to_uint8(x, xp=jnp))
  stored = np.asarray(to_uint8(result)).astype(int)
  assert np.abs(stored - render.to_uint8(expected)).max() <= 1


def test_sample_image_params_follow_the_protocol_distributions(sample):
  points = jnp.asarray(np.concatenate([sample.xy] * 4))  # 256 trajectories.
  image_windows, widths = jax.jit(render.sample_image_params)(jax.random.key(0), points)
  assert image_windows.shape == (256, 3) and image_windows.dtype == jnp.float32
  assert widths.shape == (256,) and widths.dtype == jnp.int32
  image_windows, widths, points = map(np.asarray, (image_windows, widths, points))
  x0, y0, s = image_windows.T
  lo, hi = points.min(axis=1), points.max(axis=1)
  tolerance = 1e-4  # float32 metres.
  assert np.all(x0 <= lo[:, 0] + tolerance) and np.all(x0 + s >= hi[:, 0] - tolerance)
  assert np.all(y0 <= lo[:, 1] + tolerance) and np.all(y0 + s >= hi[:, 1] - tolerance)
  assert np.all(s >= 2.0)
  scale = s / (hi - lo).max(axis=-1)
  free = s > 2.0
  assert np.all((scale[free] >= 1.25 - 1e-5) & (scale[free] <= 2.0 + 1e-5))
  assert set(widths.tolist()) == {1, 2, 3}
  # The corner is uniform over the positions that keep the trajectory inside.
  fraction = (x0 - (hi[:, 0] - s)) / (s - (hi[:, 0] - lo[:, 0]))
  assert 0.4 < fraction.mean() < 0.6 and fraction.min() < 0.1 and fraction.max() > 0.9
  # A new key, new images.
  other, _ = render.sample_image_params(jax.random.key(1), points)
  assert not np.allclose(np.asarray(other), image_windows)
