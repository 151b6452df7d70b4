"""Test set-up: two host CPU devices, so the data-parallel path runs in every test."""

import atexit
import os
import shutil
import tempfile

# Must happen before jax is imported anywhere: XLA reads the flags once, at backend start.
# Optimisation level 0 compiles the tests' many small programs about three times faster; the
# tests compare runs made under the same flags, never against a number from optimised code.
os.environ['XLA_FLAGS'] = (
  os.environ.get('XLA_FLAGS', '')
  + ' --xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0'
).strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# One persistent compilation cache for the session, which the entry point's runs in
# subprocesses inherit: a program compiled once (here or in another run of the same config) is
# read back instead of compiled again. The cache holds XLA's executables for these exact flags,
# so a hit runs the same program bit for bit.
_CACHE = tempfile.mkdtemp(prefix='trajcross_test_jax_cache_')
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', _CACHE)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.2')

import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

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


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='session')
def demo_service(tmp_path_factory):
  """`trajcross serve --demo` in its own process; yields (base URL, the demo's data source)."""
  cache = tmp_path_factory.mktemp('demo_cache')
  port = free_port()
  command = [shutil.which('trajcross') or 'trajcross', 'serve', '--demo', f'--port={port}']
  log = open(cache / 'serve.log', 'w')  # noqa: SIM115  Closed at teardown.
  process = subprocess.Popen(
    command + [f'--cache={cache}'],
    stdout=log,
    stderr=subprocess.STDOUT,
    cwd=cache,
    env=dict(os.environ, JAX_PLATFORMS='cpu'),
  )
  base = f'http://127.0.0.1:{port}'
  deadline = time.time() + 600
  while time.time() < deadline:
    status, _ = http_get(base, '/health')
    if status == 200:
      break
    if process.poll() is not None:
      raise RuntimeError((cache / 'serve.log').read_text()[-3000:])
    time.sleep(1)
  else:
    process.kill()
    raise TimeoutError('the demo service did not become ready in 10 minutes')
  (data_dir,) = (cache / 'tfds' / 'trajcross').glob('univ*/*')
  import tensorflow_datasets as tfds

  yield base, tfds.builder_from_directory(data_dir).as_data_source('test')
  process.terminate()
  process.wait(timeout=60)
  log.close()


def http_get(base: str, path: str):
  """(status, body) of GET base+path; (None, b'') while nothing listens."""
  try:
    with urllib.request.urlopen(base + path, timeout=60) as response:
      return response.status, response.read()
  except urllib.error.HTTPError as e:
    return e.code, e.read()
  except urllib.error.URLError:
    return None, b''
