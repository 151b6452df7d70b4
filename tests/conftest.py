"""Test set-up: two host CPU devices, so the data-parallel path runs in every test."""

import os

# Must happen before jax is imported anywhere: XLA reads the flags once, at backend start.
# Optimisation level 0 compiles the tests' many small programs about three times faster; the
# tests compare runs made under the same flags, never against a number from optimised code.
os.environ['XLA_FLAGS'] = (
  os.environ.get('XLA_FLAGS', '')
  + ' --xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0'
).strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def tiny_batch():
  """Eight pedestrian-like trajectories with their protocol-rendered images and boxes."""
  from trajcross_jax.data import render

  rng = np.random.default_rng(0)
  steps = rng.normal(0.3, 0.15, (8, 20, 2))
  traj = (np.cumsum(steps, axis=1) + rng.uniform(2, 10, (8, 1, 2))).astype(np.float32)
  params = [render.draw_image_params(t, 0, 1, i, 0) for i, t in enumerate(traj)]
  windows = np.array([p[0] for p in params])
  widths = np.array([p[1] for p in params])
  image = render.to_uint8(render.render_polylines(traj, windows, widths))[..., None]
  box = render.box_from_windows(windows).astype(np.float32)
  return {'trajectory': traj, 'image': image, 'box': box}


@pytest.fixture(scope='session')
def synthetic_data_dir(tmp_path_factory):
  """The tiny synthetic dataset of configs/test.py, built once per session."""
  from configs import test as test_config
  from trajcross_jax.data import pipeline

  config = test_config.get_config()
  config.data.data_dir = str(tmp_path_factory.mktemp('tfds'))
  pipeline.prepare(config.data)
  return config.data.data_dir


@pytest.fixture(scope='session')
def trained_workdir(tmp_path_factory, synthetic_data_dir):
  """A workdir holding configs/test.py trained on the tiny synthetic dataset, trained once."""
  from configs import test as test_config
  from trajcross_jax import train

  config = test_config.get_config()
  config.data.data_dir = synthetic_data_dir
  workdir = tmp_path_factory.mktemp('trained')
  train.train(config, str(workdir))
  return str(workdir)
