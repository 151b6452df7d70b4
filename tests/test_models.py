"""The networks: shapes, the WCNN's full-width kernels, the box, the variants' branches."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from trajcross_jax.data import render
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import get_method
from trajcross_jax.models import inputs
from trajcross_jax.models.discriminator import Discriminator
from trajcross_jax.models.image import WCNN, ImageEncoder
from trajcross_jax.models.shape import StridedConv
from trajcross_jax.models.trajectory import TrajectoryEncoder

# A univ-sized scene frame (the models' inputs lie in about [2, 16] m).
FRAME = Normalisation(center=(8.0, 7.0), scale=8.0)


def _trajectories(b=3, m=20, seed=0):
  rng = np.random.default_rng(seed)
  steps = rng.normal(0.3, 0.1, (b, m, 2))
  return (np.cumsum(steps, axis=1) + rng.uniform(2, 10, (b, 1, 2))).astype(np.float32)


def _images(traj, seed=0, size=64):
  windows, widths = [], []
  for i, t in enumerate(traj):
    w, lw = render.draw_image_params(t, seed, 0, i, 0)
    windows.append(w)
    widths.append(lw)
  windows, widths = np.array(windows), np.array(widths)
  image = render.to_uint8(render.render_polylines(traj, windows, widths, size))[..., None]
  return image, render.box_from_windows(windows).astype(np.float32)


@pytest.mark.parametrize('branch,dim', [('raster', 32), ('seqcnn', 32), ('none', 32)])
def test_trajectory_encoder_shapes(branch, dim):
  model = TrajectoryEncoder(
    point_embed=8,
    conv_heights=(2, 3),
    conv_features=4,
    shape_channels=(4, 4),
    branch_dim=16,
    shape_branch=branch,
    raster_size=16,
  )
  traj = jnp.asarray(_trajectories())
  z, _ = model.init_with_output(jax.random.key(0), traj)
  assert z.shape == (3, dim)
  assert np.isfinite(np.asarray(z)).all()


def test_trajectory_encoder_rejects_unknown_branch():
  with pytest.raises(ValueError, match='shape_branch'):
    TrajectoryEncoder(shape_branch='mlp').init(jax.random.key(0), jnp.zeros((1, 20, 2)))


def test_wcnn_kernels_span_the_image_width():
  x = jnp.zeros((2, 64, 48, 3))
  params = WCNN(heights=(3, 5), features=4, out_dim=8).init(jax.random.key(0), x)['params']
  assert params['conv_h3'].shape == (3, 48, 3, 4)
  assert params['conv_h5'].shape == (5, 48, 3, 4)


def test_wcnn_is_a_full_width_valid_convolution():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 10, 6, 2)), jnp.float32)
  wcnn = WCNN(heights=(3,), features=4, out_dim=5)
  params = wcnn.init(jax.random.key(0), x)['params']
  conv = nn.Conv(4, (3, 6), padding='VALID')
  conv_params = {'params': {'kernel': params['conv_h3'], 'bias': params['bias_h3']}}
  pooled = nn.relu(conv.apply(conv_params, x)).max(axis=(1, 2))
  expected = nn.Dense(5).apply({'params': params['out']}, pooled)
  np.testing.assert_allclose(wcnn.apply({'params': params}, x), expected, atol=1e-5)


@pytest.mark.parametrize('coord_channels', [False, True])
def test_box_changes_the_image_embedding_only_with_box_on(coord_channels):
  image, box = _images(_trajectories())
  moved = box + np.array([1.0, 0.5, 1.0, 0.5], np.float32)
  for use_box, should_change in ((True, True), (False, False)):
    model = ImageEncoder(
      wcnn_heights=(3,),
      wcnn_features=4,
      box_embed=4,
      shape_channels=(4, 4),
      branch_dim=8,
      use_box=use_box,
      coord_channels=coord_channels,
    )
    params = model.init(jax.random.key(0), image, box)
    z1 = model.apply(params, image, box)
    z2 = model.apply(params, image, moved)
    assert z1.shape == (3, 16)
    changed = not np.allclose(z1, z2)
    assert changed == should_change
    assert ('box_embed' in params['params']) == use_box


def test_block_mean_averages_blocks_and_refuses_a_remainder():
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  np.testing.assert_allclose(inputs.block_mean(x, 2)[0, ..., 0], [[2.5, 4.5], [10.5, 12.5]])
  with pytest.raises(ValueError, match='does not divide'):
    inputs.block_mean(jnp.zeros((1, 6, 6, 1)), 4)


def test_shape_pool_feeds_the_shape_cnn_the_coarse_image():
  # An image whose pixels repeat in 2 x 2 blocks, pooled by 2, is the coarse image with
  # the coarse image's coordinate channels: the shape half of the embedding must match.
  coarse, box = _images(_trajectories(), size=32)
  fine = np.repeat(np.repeat(coarse, 2, axis=1), 2, axis=2)
  kwargs = dict(wcnn_heights=(3,), wcnn_features=4, box_embed=4, shape_channels=(4, 4))
  kwargs.update(branch_dim=8, coord_channels=True)
  pooled, plain = ImageEncoder(shape_pool=2, **kwargs), ImageEncoder(shape_pool=1, **kwargs)
  p_pooled = pooled.init(jax.random.key(0), fine, box)
  p_plain = plain.init(jax.random.key(1), coarse, box)
  p_plain['params']['shape_cnn'] = p_pooled['params']['shape_cnn']
  z_pooled = pooled.apply(p_pooled, fine, box)
  z_plain = plain.apply(p_plain, coarse, box)
  np.testing.assert_allclose(z_pooled[:, 8:], z_plain[:, 8:], rtol=1e-5, atol=1e-6)
  unpooled = plain.apply(dict(p_pooled), fine, box)  # The same weights at full resolution.
  assert not np.allclose(unpooled[:, 8:], z_plain[:, 8:], atol=1e-3)


def test_discriminator_outputs_one_logit_per_row():
  z = jnp.ones((5, 12))
  logits, _ = Discriminator(hidden=(8,)).init_with_output(jax.random.key(0), z)
  assert logits.shape == (5,)


def test_trajcross_embeddings_are_unit_and_paired_shapes():
  config = test_config.get_config()
  method = get_method(config, FRAME)
  traj = _trajectories(4)
  image, box = _images(traj)
  batch = {'trajectory': traj, 'image': image, 'box': box}
  params, extra = method.init(jax.random.key(0), batch)
  z_t = method.embed_trajectories(params, extra, traj)
  z_i = method.embed_images(params, extra, image, box)
  assert z_t.shape == z_i.shape == (4, 2 * config.model.branch_dim)
  np.testing.assert_allclose(jnp.linalg.norm(z_t, axis=1), 1.0, rtol=1e-4)
  np.testing.assert_allclose(jnp.linalg.norm(z_i, axis=1), 1.0, rtol=1e-4)


@pytest.mark.parametrize('size', [8, 7, 64])
def test_strided_conv_equals_flax_conv(size):
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, size, size, 3)), jnp.float32)
  conv = nn.Conv(4, (3, 3), strides=(2, 2))
  params = conv.init(jax.random.key(0), x)
  np.testing.assert_allclose(StridedConv(4).apply(params, x), conv.apply(params, x), atol=1e-5)
