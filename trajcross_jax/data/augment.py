"""Re-drawing training images on the device (PROTOCOL.md section 8), by the dataset's rules."""

import jax
import jax.numpy as jnp

from trajcross_jax.data import hard as hard_lib
from trajcross_jax.data import render


def redraw_images(
  key: jax.Array,
  trajectory: jax.Array,
  image_size: int,
  hard: hard_lib.HardOptions = hard_lib.PAPER,
  crowd: jax.Array | None = None,
  clean_fraction: float = 0.0,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Draws a fresh image and box for each trajectory by the rules of PROTOCOL.md section 4.

  A new window and line width from `key`, rendered by the dataset's rasteriser and rounded to
  uint8 as stored images are. Without it a model memorises the 10,000 fixed training images
  (PROTOCOL.md section 10).

  With hard rules (a hard dataset; data/hard.py), `trajectory` is the true track: the image is
  drawn from it by those rules, and the trajectory returned is a fresh noisy observation of it,
  as the builder made the stored pairs. The crowd rule draws the batch's other paths `crowd`
  (B, slots, M, 2; the dataset's 'crowd' feature) in the same image.

  With hard rules and clean_fraction > 0, each pair is instead drawn by the paper protocol's
  rules with that probability: the true track itself and its clean line image (a model trained
  on such a mix keeps the clean protocol; config.train.clean_fraction).

  Returns:
    (image (B, S, S, 1) uint8, box (B, 4) float32, trajectory (B, M, 2)): the trajectory is the
    one given when no hard rule applies.
  """
  if hard.active and clean_fraction > 0:
    key_hard, key_clean, key_pick = jax.random.split(key, 3)
    hard_drawn = redraw_images(key_hard, trajectory, image_size, hard, crowd)
    clean_drawn = redraw_images(key_clean, trajectory, image_size)
    clean = jax.random.uniform(key_pick, trajectory.shape[:1]) < clean_fraction
    return tuple(
      jnp.where(clean.reshape((-1,) + (1,) * (h.ndim - 1)), c, h)
      for h, c in zip(hard_drawn, clean_drawn, strict=True)
    )
  if hard.active:  # The paper protocol's draws stay those of `key` itself.
    key, key_draws = jax.random.split(key)
  windows, widths = render.sample_image_params(key, trajectory)
  if not hard.active:
    intensity = render.render_polylines(trajectory, windows, widths, size=image_size, xp=jnp)
  else:
    draws = hard_lib.unit_draws_jax(key_draws, *trajectory.shape[:2], image_size)
    intensity = hard_lib.draw(
      trajectory, windows, widths, hard, draws, image_size, xp=jnp, crowd=crowd
    )
    trajectory = hard_lib.observe(trajectory, hard, draws, xp=jnp)
  image = render.to_uint8(intensity, xp=jnp)[..., None]
  return image, render.box_from_windows(windows, xp=jnp).astype(jnp.float32), trajectory
