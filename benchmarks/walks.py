"""Random-walk pairs for the speed benchmarks: pedestrian-like tracks with protocol images.

No dataset to build: the walks are drawn on the host and their images rendered by the jitted
training re-drawer (augment.redraw_images) on the default device, so a GPU run can make a
gallery of millions in seconds (benchmarks/search_speed.py --gallery_source=walks).
"""

import functools

import jax
import numpy as np

from trajcross_jax.data import augment
from trajcross_jax.data.normalisation import Normalisation

# A univ-sized scene frame (the models' inputs lie in about [2, 16] m).
FRAME = Normalisation(center=(8.0, 7.0), scale=8.0)


@functools.partial(jax.jit, static_argnums=2)
def _redraw(key, trajectory, image_size):
  return augment.redraw_images(key, trajectory, image_size)


def random_batch(size: int, image_size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """`size` walks of 20 points in the univ plaza, with protocol-rendered images and boxes."""
  rng = np.random.default_rng(seed)
  steps = rng.normal(0.0, 0.15, (size, 20, 2)) + rng.normal(0.0, 0.4, (size, 1, 2))
  traj = (np.cumsum(steps, axis=1) + rng.uniform(2, 12, (size, 1, 2))).astype(np.float32)
  image, box, _ = _redraw(jax.random.key(seed), traj, image_size)
  return {'trajectory': traj, 'image': np.asarray(image), 'box': np.asarray(box)}
