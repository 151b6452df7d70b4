"""Re-drawing training images on the device (PROTOCOL.md section 8)."""

import jax
import jax.numpy as jnp

from trajcross_jax.data import render


def redraw_images(
  key: jax.Array, trajectory: jax.Array, image_size: int
) -> tuple[jax.Array, jax.Array]:
  """Draws a fresh image and box for each trajectory by the rules of PROTOCOL.md section 4.

  A new window and line width from `key`, rendered by the dataset's rasteriser and rounded to
  uint8 as stored images are. Without it a model memorises the 10,000 fixed training images
  (PROTOCOL.md section 10). Returns (image (B, S, S, 1) uint8, box (B, 4) float32).
  """
  windows, widths = render.sample_image_params(key, trajectory)
  intensity = render.render_polylines(trajectory, windows, widths, size=image_size, xp=jnp)
  image = render.to_uint8(intensity, xp=jnp)[..., None]
  return image, render.box_from_windows(windows, xp=jnp).astype(jnp.float32)
