"""On-device re-drawing of training images."""

import jax
import numpy as np

from trajcross_jax.data import augment


def test_redrawn_images_follow_the_protocol_and_vary_with_the_key(tiny_batch):
  traj = tiny_batch['trajectory']
  redraw = jax.jit(augment.redraw_images, static_argnums=2)
  image, box = redraw(jax.random.key(0), traj, 64)
  image2, box2 = redraw(jax.random.key(1), traj, 64)
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
