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
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Draws a fresh image and box for each trajectory by the rules of PROTOCOL.md section 4.

  A new window and line width from `key`, rendered by the dataset's rasteriser and rounded to
  uint8 as stored images are. Without it a model memorises the 10,000 fixed training images
  (PROTOCOL.md section 10).

  With hard rules (a hard dataset; data/hard.py), `trajectory` is the true track: the image is
  drawn from it by those rules, and the trajectory returned is a fresh noisy observation of it,
  as the builder made the stored pairs. The crowd rule draws the batch's other paths `crowd`
  (B, slots, M, 2; the dataset's 'crowd' feature) in the same image.

  Returns:
    (image (B, S, S, 1) uint8, box (B, 4) float32, trajectory (B, M, 2)): the trajectory is the
    one given when no hard rule applies.
  """
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
