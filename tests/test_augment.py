"""On-device re-drawing of training images."""

import dataclasses

import jax
import numpy as np

from trajcross_jax.data import augment, hard


def test_redrawn_images_follow_the_protocol_and_vary_with_the_key(tiny_batch):
  traj = tiny_batch['trajectory']
  redraw = jax.jit(augment.redraw_images, static_argnums=2)
  image, box, same = redraw(jax.random.key(0), traj, 64)
  image2, box2, _ = redraw(jax.random.key(1), traj, 64)
  np.testing.assert_array_equal(same, traj)  # No hard rule: the trajectory is kept.
  assert image.dtype == np.uint8 and image.shape == (8, 64, 64, 1)
  box = np.asarray(box)
  x, y = traj[..., 0], traj[..., 1]
  assert (box[:, [0]] <= x + 1e-4).all() and (x <= box[:, [2]] + 1e-4).all()
  assert (box[:, [3]] <= y + 1e-4).all() and (y <= box[:, [1]] + 1e-4).all()
  side = box[:, 2] - box[:, 0]
  np.testing.assert_allclose(side, box[:, 1] - box[:, 3], rtol=1e-5)  # Square windows.
  assert (side >= 2.0 - 1e-5).all()
  assert (np.asarray(image).reshape(8, -1).max(axis=1) >= 200).all()  # Every line drawn.
  assert not np.array_equal(np.asarray(box), np.asarray(box2))
  assert not np.array_equal(np.asarray(image), np.asarray(image2))


def _crowd(track, slots=hard.CROWD_SLOTS):
  """One other path per example, 0.5 m beside its track; the other slots empty (NaN)."""
  crowd = np.full((len(track), slots) + track.shape[1:], np.nan, np.float32)
  crowd[:, 0] = track + 0.5
  return crowd


def test_hard_redraws_draw_the_track_by_the_rules_and_observe_it_afresh(tiny_batch):
  track = tiny_batch['trajectory']
  crowd = _crowd(track)
  redraw = jax.jit(augment.redraw_images, static_argnums=(2, 3))
  image, box, observed = redraw(jax.random.key(0), track, 64, hard.HARD, crowd=crowd)
  _, _, observed2 = redraw(jax.random.key(1), track, 64, hard.HARD, crowd=crowd)
  assert image.dtype == np.uint8 and observed.shape == track.shape
  noise = np.asarray(observed) - track
  assert 0.1 < noise.std() < 1.0  # Noise and drift of HARD's sizes (0.1 m, 0.2 m).
  assert not np.allclose(observed, observed2)  # A fresh observation each draw.
  # The image shows the true track: its box holds every point of it.
  box = np.asarray(box)
  x, y = track[..., 0], track[..., 1]
  assert (box[:, [0]] <= x + 1e-4).all() and (x <= box[:, [2]] + 1e-4).all()
  assert (box[:, [3]] <= y + 1e-4).all() and (y <= box[:, [1]] + 1e-4).all()
  # Each rule alone moves the image away from the protocol's drawing in the same window (a
  # negligible background makes the baseline take the hard path, so the draws are the same).
  baseline = dataclasses.replace(hard.PAPER, background=1e-6)
  clean, _, _ = redraw(jax.random.key(0), track, 64, baseline)
  rules = (
    {'renderer': 'dots'},
    {'blur_px': 1.0},
    {'background': 40.0},
    {'crowd': 0.5},
    {'resample_step': 1.5},
  )
  for rule in rules:
    one = dataclasses.replace(baseline, **rule)
    drawn, _, kept = redraw(jax.random.key(0), track, 64, one, crowd=crowd)
    np.testing.assert_array_equal(kept, track)  # No track rule: no noise.
    assert np.abs(np.asarray(drawn, float) - np.asarray(clean, float)).mean() > 0.5, rule


def test_a_clean_fraction_draws_that_share_by_the_paper_rules_and_the_rest_hard(tiny_batch):
  track = np.tile(tiny_batch['trajectory'], (16, 1, 1))  # 128 tracks.
  redraw = jax.jit(augment.redraw_images, static_argnums=(2, 3, 5))
  crowd = _crowd(track)
  image, box, observed = redraw(jax.random.key(0), track, 64, hard.HARD, crowd, 0.5)
  image, observed = np.asarray(image), np.asarray(observed)
  clean = (observed == track).all(axis=(1, 2))  # The true track itself, not an observation.
  assert 40 <= clean.sum() <= 88  # Binomial(128, 0.5): 5.6 standard deviations either side.
  assert np.abs(observed[~clean] - track[~clean]).max(axis=(1, 2)).min() > 0  # Noisy.
  # A clean image is one line on black (no crowd either: over 90 % of it black here); HARD's
  # background texture and pixel noise leave under 65 % black in the others.
  black = (image.reshape(len(track), -1) == 0).mean(axis=1)
  assert black[clean].min() > 0.85 and black[~clean].max() < 0.75
  # Every image's box holds the true track, as either protocol draws it.
  x, y = track[..., 0], track[..., 1]
  box = np.asarray(box)
  assert (box[:, [0]] <= x + 1e-4).all() and (x <= box[:, [2]] + 1e-4).all()
  assert (box[:, [3]] <= y + 1e-4).all() and (y <= box[:, [1]] + 1e-4).all()
  # No share, no clean pair: the hard draws of before, bit for bit.
  none = redraw(jax.random.key(0), track, 64, hard.HARD, crowd, 0.0)
  default = redraw(jax.random.key(0), track, 64, hard.HARD, crowd)
  for a, b in zip(none, default, strict=True):
    np.testing.assert_array_equal(a, b)
  assert not (np.asarray(none[2]) == track).all(axis=(1, 2)).any()
