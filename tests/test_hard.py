"""The hard protocol's rules (data/hard.py): each off by default, each doing what it says."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trajcross_jax.data import hard, render


def _tracks(n=64, seed=0):
  rng = np.random.default_rng(seed)
  steps = rng.normal(0.3, 0.15, (n, 20, 2))
  points = np.cumsum(steps, axis=1) + rng.uniform(2, 10, (n, 1, 2))
  params = [render.draw_image_params(p, 0, 1, i, 0) for i, p in enumerate(points)]
  return points, np.array([w for w, _ in params]), np.array([lw for _, lw in params])


def test_the_defaults_are_the_paper_protocol():
  points, windows, widths = _tracks()
  options = hard.HardOptions()
  assert not options.active and hard.HardOptions(blur_px=1.0).active
  draws = hard.unit_draws(np.random.default_rng(0), len(points), 20, 64)
  np.testing.assert_array_equal(hard.observe(points, options, draws), points)
  # Every rule keeps the dtype it is given (float32 tracks stay float32).
  noisy = hard.HardOptions(noise_m=0.1, drift_m=0.1, blur_px=1.0, background=5.0, pixel_noise=2.0)
  assert hard.observe(points.astype(np.float32), noisy, draws).dtype == np.float32
  assert hard.draw(points, windows, widths, noisy, draws, 64).dtype == np.float64
  np.testing.assert_array_equal(
    hard.draw(points, windows, widths, options, draws, 64),
    render.render_polylines(points, windows, widths, 64),
  )


def test_noise_and_drift_have_their_sizes():
  points = np.zeros((4000, 20, 2))
  draws = hard.unit_draws(np.random.default_rng(1), 4000, 20, 8)
  noisy = hard.observe(points, hard.HardOptions(noise_m=0.5), draws)
  assert abs(noisy.std() - 0.5) < 0.01
  drifted = hard.observe(points, hard.HardOptions(drift_m=2.0), draws)
  # The offset is smooth: consecutive points move together; it starts with std 2 m and
  # changes by std 2 m over the window, so the last point's offset has std 2 * sqrt(2).
  assert abs(drifted[:, 0].std() - 2.0) < 0.05
  assert abs(drifted[:, -1].std() - 2.0 * np.sqrt(2)) < 0.07
  assert np.abs(np.diff(drifted, axis=1)).max() < np.abs(drifted).max() / 5


def test_dots_draw_the_points_not_the_segments():
  points = np.array([[[1.0, 1.0], [3.0, 1.0]]])
  windows = np.array([[0.0, 0.0, 4.0]])  # 16 pixels a metre at 64 pixels.
  image = hard.render_dots(points, windows, np.array([2.0]), 64)[0]
  row = 64 - 16  # y = 1 m.
  assert image[row, 16] == 255 and image[row, 48] == 255  # On each point.
  assert image[row, 32] == 0  # Half-way along the segment between them: no ink.
  line = render.render_polylines(points, windows, np.array([2.0]), 64)[0]
  assert line[row, 32] == 255


def test_blur_background_and_pixel_noise_change_the_image_as_described():
  points, windows, widths = _tracks(8)
  draws = hard.unit_draws(np.random.default_rng(2), 8, 20, 64)
  clean = hard.draw(points, windows, widths, hard.HardOptions(), draws, 64)
  blurred = hard.draw(points, windows, widths, hard.HardOptions(blur_px=1.5), draws, 64)
  assert blurred.max() < clean.max()  # Peaks spread out ...
  assert (blurred > 1).sum() > (clean > 1).sum()  # ... over more pixels,
  assert abs(blurred.sum() - clean.sum()) / clean.sum() < 0.05  # keeping the ink.
  textured = hard.draw(points, windows, widths, hard.HardOptions(background=40.0), draws, 64)
  empty = clean == 0
  assert textured[empty].std() > 5  # The background now varies ...
  assert np.abs(np.diff(textured[0], axis=1))[empty[0][:, 1:]].mean() < 5  # ... smoothly.
  noisy = hard.draw(points, windows, widths, hard.HardOptions(pixel_noise=10.0), draws, 64)
  middle = (clean > 50) & (clean < 200)
  assert abs((noisy - clean)[middle].std() - 10.0) < 1.0
  for image in (blurred, textured, noisy):
    assert image.min() >= 0 and image.max() <= 255


def test_numpy_and_jax_compute_the_same_images_of_the_same_draws():
  points, windows, widths = _tracks(8)
  options = hard.HardOptions(
    noise_m=0.1,
    drift_m=0.3,
    renderer='dots',
    blur_px=1.0,
    pixel_noise=5.0,
    background=20.0,
    crowd=0.4,
    resample_step=1.5,
  )
  crowd = np.full((8, 3, 20, 2), np.nan)
  crowd[:, 0], crowd[:5, 1] = points[::-1] * 0.9 + 1.0, points[:5] + 0.4
  draws = hard.unit_draws(np.random.default_rng(3), 8, 20, 64)
  observed = hard.observe(points, options, draws)
  expected = hard.draw(observed, windows, widths, options, draws, 64, crowd=crowd)
  as_jax = {k: jnp.asarray(v, jnp.float32) for k, v in draws.items()}

  @jax.jit
  def on_device(p, w, lw, d, c):
    return hard.draw(hard.observe(p, options, d, jnp), w, lw, options, d, 64, jnp, crowd=c)

  got = on_device(
    jnp.asarray(points, jnp.float32),
    jnp.asarray(windows, jnp.float32),
    widths,
    as_jax,
    jnp.asarray(crowd, jnp.float32),
  )
  np.testing.assert_allclose(np.asarray(got), expected, atol=0.05)
  shapes = {k: v.shape for k, v in hard.unit_draws_jax(jax.random.key(0), 8, 20, 64).items()}
  assert shapes == {k: v.shape for k, v in draws.items()}


def test_the_same_seed_gives_the_same_bytes():
  points, windows, widths = _tracks(8)
  options = hard.HardOptions(noise_m=0.2, renderer='dots', pixel_noise=3.0)
  images = []
  for _ in range(2):
    draws = hard.unit_draws(np.random.default_rng(7), 8, 20, 64)
    observed = hard.observe(points, options, draws)
    images.append(render.to_uint8(hard.draw(observed, windows, widths, options, draws, 64)))
  assert images[0].tobytes() == images[1].tobytes()


def test_resampling_takes_the_track_at_other_times():
  points = np.cumsum(np.random.default_rng(4).normal(0.3, 0.2, (2, 20, 2)), axis=1)
  np.testing.assert_allclose(hard.resample(points, 1.0, np.zeros(2)), points)
  np.testing.assert_allclose(hard.resample(points, 2.0, np.zeros(2)), points[:, ::2])
  halves = hard.resample(points, 1.0, np.full(2, 0.5))
  np.testing.assert_allclose(halves[:, :-1], (points[:, :-1] + points[:, 1:]) / 2)
  np.testing.assert_allclose(halves[:, -1], points[:, -1])  # Past the end: held at the last.
  assert hard.resampled_length(20, 1.5) == 13 and hard.resampled_length(20, 0.5) == 39
  assert hard.resample(points, 1.5, np.full(2, 0.9)).shape == (2, 13, 2)
  # The dots renderer then draws other points than the trajectory's.
  windows = np.array([render.draw_image_params(p, 0, 1, i, 0)[0] for i, p in enumerate(points)])
  draws = hard.unit_draws(np.random.default_rng(5), 2, 20, 64)
  options = hard.HardOptions(renderer='dots')
  plain = hard.draw(points, windows, [1, 1], options, draws, 64)
  moved = hard.draw(
    points, windows, [1, 1], hard.HardOptions(renderer='dots', resample_step=1.5), draws, 64
  )
  assert np.abs(plain - moved).mean() > 1.0


def test_the_crowd_is_drawn_fainter_and_only_where_there_is_one():
  points = np.array([[[1.0, 1.0], [3.0, 1.0]]])  # A horizontal path at y = 1 m.
  crowd = np.full((1, 3, 2, 2), np.nan)
  crowd[0, 0] = [[2.0, 0.2], [2.0, 3.8]]  # A vertical one at x = 2 m, crossing it.
  windows = np.array([[0.0, 0.0, 4.0]])  # 16 pixels a metre at 64 pixels.
  draws = hard.unit_draws(np.random.default_rng(6), 1, 2, 64)
  options = hard.HardOptions(crowd=0.5)
  image = hard.draw(points, windows, [2], options, draws, 64, crowd=crowd)[0]
  alone = hard.draw(points, windows, [2], hard.PAPER, draws, 64)[0]
  row, column = 64 - 16, 32  # y = 1 m, x = 2 m: where they cross.
  assert image[row, column] == 255  # The paired path stays the brightest.
  assert image[10, column] == pytest.approx(127.5)  # The other path at half its brightness,
  assert alone[10, column] == 0  # where the paired path alone draws nothing.
  assert image.max() == 255 and np.unique(image[image > 0]).size > 2
  np.testing.assert_array_equal(image[:, :24], alone[:, :24])  # Nothing else changes,
  empty = np.full_like(crowd, np.nan)  # and empty slots draw nothing.
  np.testing.assert_array_equal(
    hard.draw(points, windows, [2], options, draws, 64, crowd=empty)[0], alone
  )
  with pytest.raises(ValueError, match='the crowd rule draws the other paths'):
    hard.draw(points, windows, [2], options, draws, 64)


def test_crowd_paths_are_the_others_seen_in_the_window_nearest_first():
  from trajcross_jax.data import tracks as tracks_lib
  from trajcross_jax.data import windows as windows_lib

  def track(ped, first, xy):
    xy = np.asarray(xy, float)
    return tracks_lib.Track('rec', ped, first + 10 * np.arange(len(xy)), xy)

  walk = np.stack([np.arange(6.0), np.zeros(6)], axis=-1)
  tracks = [
    track(1, 0, walk),  # The example's pedestrian.
    track(2, 20, walk[:3] + [0, 1.0]),  # Seen during frames 20-40, 1 m away.
    track(3, 0, walk + [0, 3.0]),  # Seen throughout, 3 m away.
    track(4, 100, walk),  # Seen after the window: not in the picture.
    track(1, 200, walk),  # The same pedestrian later: not another one.
    tracks_lib.Track('other', 5, 10 * np.arange(6), walk),  # Another recording.
  ]
  examples = windows_lib.make_windows(tracks[:1], length=5)  # Windows at frames 0 and 10.
  paths = hard.crowd_paths(tracks, examples, slots=3)
  assert paths.shape == (2, 3, 5, 2)
  first = paths[0]
  # Pedestrian 2 (nearest) held at its first point before frame 20 and its last after 40,
  expected = np.stack([[0.0, 0, 0, 1, 2], [1.0] * 5], axis=-1)
  np.testing.assert_allclose(first[0], expected)
  np.testing.assert_allclose(first[1], walk[:5] + [0, 3.0])  # then pedestrian 3;
  assert np.isnan(first[2]).all()  # nobody else.
  np.testing.assert_allclose(paths[1, 1], walk[1:6] + [0, 3.0])  # The next window's frames.


@pytest.mark.parametrize(
  'field, value, message',
  [
    ('renderer', 'spline', 'renderer must be one of'),
    ('noise_m', -1.0, 'noise_m must be'),
    ('crowd', 1.0, 'crowd must be below 1'),
    ('resample_step', -0.5, 'resample_step must be'),
  ],
)
def test_bad_options_are_named(field, value, message):
  with pytest.raises(ValueError, match=message):
    hard.HardOptions(**{field: value})


# ----------------------------------------------------------------------------- the builder


def _split(name: str, data_dir, test_size: int = 300, **overrides) -> dict[str, np.ndarray]:
  """The test split of a small build of config `name`, as arrays by feature."""
  from trajcross_jax.data import builder as builder_lib

  build = builder_lib.make_builder(
    name, data_dir, train_size=16, test_size=test_size, seed=3, **overrides
  )
  build.download_and_prepare()
  source = build.as_data_source('test')
  examples = [source[i] for i in range(len(source))]
  return {k: np.stack([np.asarray(e[k]) for e in examples]) for k in examples[0]}


def test_hard_configs_are_registered_and_named_by_what_changes():
  from trajcross_jax.data import builder as builder_lib

  for name in ('univ_hard', 'synthetic_hard'):
    assert builder_lib.registered(name).hard == hard.HARD and name in builder_lib.DATASETS
  assert not builder_lib.registered('univ').hard.active
  off = dataclasses.replace(hard.HARD, noise_m=0.0, renderer='line')
  assert builder_lib.builder_config('univ_hard', hard=off).name == 'univ_hard-noise_m0-rendererline'
  assert builder_lib.builder_config('univ', hard=hard.HardOptions(blur_px=1.0)).name == (
    'univ-blur_px1'
  )
  assert builder_lib.builder_config('univ_hard', hard=hard.HARD) is builder_lib.registered(
    'univ_hard'
  )


def test_a_hard_build_keeps_the_protocol_boxes_and_changes_the_images(tmp_path):
  clean = _split('univ', tmp_path, test_size=64)
  rough = _split('univ_hard', tmp_path, test_size=64)
  assert 'track' not in clean and 'track' in rough
  # The same examples, windows and widths (drawn from the true track): only the rules differ.
  np.testing.assert_array_equal(rough['track'], clean['trajectory'])
  np.testing.assert_array_equal(rough['box'], clean['box'])
  assert not np.array_equal(rough['trajectory'], rough['track'])
  assert np.abs(rough['image'].astype(float) - clean['image']).mean() > 10
  # The other pedestrians the images show: nearest first, then empty slots.
  crowd = rough['crowd']
  assert crowd.shape == (64, hard.CROWD_SLOTS, 20, 2) and crowd.dtype == np.float32
  present = ~np.isnan(crowd[:, :, 0, 0])
  assert present[:, 0].mean() > 0.9  # univ is crowded: nearly every window shows someone,
  assert (np.diff(present.astype(int), axis=1) <= 0).all()  # and no gap between slots.
  approach = np.linalg.norm(crowd - rough['track'][:, None], axis=-1).min(axis=-1)
  assert (approach[present] > 0).all()  # Never the example's own track.
  assert (np.diff(np.where(present, approach, np.inf), axis=1) >= -1e-4).all()


def test_a_hard_build_is_reproducible_and_its_noise_has_its_sizes(tmp_path):
  noisy = hard.HardOptions(noise_m=0.3)
  first = _split('univ', tmp_path / 'a', hard=noisy)
  again = _split('univ', tmp_path / 'b', hard=noisy)
  for k in first:
    assert first[k].tobytes() == again[k].tobytes(), k
  error = first['trajectory'] - first['track']
  assert abs(error.std() - 0.3) < 0.01 and abs(error.mean()) < 0.02
  drifting = _split('univ', tmp_path, hard=hard.HardOptions(drift_m=0.5))
  offset = drifting['trajectory'] - drifting['track']
  assert abs(offset[:, 0].std() - 0.5) < 0.05  # The drift's start, per window and axis.
  # A smooth drift: neighbouring points share nearly all of it.
  assert np.abs(np.diff(offset, axis=1)).max() < 0.25


def test_the_data_config_changes_a_rule_and_bad_values_are_named():
  from configs import default
  from trajcross_jax import validation
  from trajcross_jax.data import pipeline

  config = default.get_config()
  config.data.name = 'univ_hard'
  assert pipeline.hard_options(config.data) == hard.HARD
  config.data.hard.noise_m = 0.0
  assert pipeline.hard_options(config.data) == dataclasses.replace(hard.HARD, noise_m=0.0)
  assert pipeline.get_builder(config.data).builder_config.name == 'univ_hard-noise_m0'
  config.data.hard.renderer = 'spline'
  with pytest.raises(ValueError, match=r'config.data.hard: renderer must be one of'):
    validation.validate(config)


def test_hard_errors_sorts_first_results_by_pedestrian_and_step():
  from benchmarks import hard_errors

  # Pedestrian a: windows at frames 0, 10, 20, 50 (step 10); b: frame 30; c: frame 900.
  pedestrian = np.array(['a', 'a', 'a', 'a', 'b', 'c'])
  start = np.array([0, 10, 20, 50, 30, 900])
  assert hard_errors.frame_step(pedestrian, start) == 10
  first = np.array([0, 0, 0, 0, 0, 4])
  got = hard_errors.classify(first, pedestrian, start, step=10, window=20)
  names = [hard_errors.CLASSES[c] for c in got]
  assert names == [
    'correct',
    'same pedestrian, 1 step',
    'same pedestrian, 2 steps',
    'same pedestrian, 4+ steps',
    'other pedestrian, same time',
    'other pedestrian, other time',
  ]
  shares = hard_errors.shares(got)
  assert shares['correct'] == pytest.approx(100 / 6) and sum(shares.values()) == pytest.approx(100)
  with pytest.raises(ValueError, match='no pedestrian has two windows'):
    hard_errors.frame_step(np.array(['a', 'b']), np.array([0, 10]))
