"""The inference API: a checkpoint's encoders without training state."""

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from configs import test as test_config
from trajcross_jax import checkpoint, train
from trajcross_jax import retriever as retriever_module
from trajcross_jax.data import pipeline
from trajcross_jax.methods import get_method
from trajcross_jax.retriever import InputError, Retriever, read_png, tree_hash


@pytest.fixture(scope='module')
def retriever(trained_workdir):
  return Retriever.load(trained_workdir, batch_size=16)


@pytest.fixture(scope='module')
def test_split(synthetic_data_dir):
  config = test_config.get_config()
  config.data.data_dir = synthetic_data_dir
  builder = pipeline.prepare(config.data)
  source = pipeline.load_split(builder, 'test', True)
  return source.get_batch(np.arange(len(source)))


def test_embeddings_equal_the_full_train_state(retriever, trained_workdir, test_split):
  # The reference: the whole train state (optimiser included) restored as training does.
  config = test_config.get_config()
  mgr = checkpoint.manager(trained_workdir)
  meta = checkpoint.read_meta(mgr, mgr.latest_step())
  method = get_method(config, checkpoint.normalisation(meta))
  tx = method.optimizer(meta['total_steps'])
  mesh = retriever.mesh
  target = train.abstract_state(method, tx, config, mesh, test_split)
  state, _ = checkpoint.restore(mgr, mgr.latest_step(), target, config)
  expected_t = method.embed_trajectories(state.params, state.extra, test_split['trajectory'])
  expected_i = method.embed_images(
    state.params, state.extra, test_split['image'], test_split['box']
  )
  # 48 items in batches of 16: no padding; 47 pads the last batch; 1 and 5 are a service's
  # short calls, padded to 1 and 8.
  for n in (48, 47, 1, 5):
    np.testing.assert_allclose(
      retriever.embed_trajectories(test_split['trajectory'][:n]), expected_t[:n], atol=1e-5
    )
    np.testing.assert_allclose(
      retriever.embed_images(test_split['image'][:n], test_split['box'][:n]),
      expected_i[:n],
      atol=1e-5,
    )
  assert retriever.step == mgr.latest_step()
  assert retriever.config.model.branch_dim == config.model.branch_dim  # From the checkpoint.


def test_micro_batches_change_only_the_speed(retriever, test_split):
  # The tests' CPU devices default to micro-batches; 2 items per device cuts a 16-item call
  # into 4 pieces, 0 computes it at once.
  assert retriever.micro_batch == retriever_module.CPU_MICRO_BATCH
  pieces = dataclasses.replace(retriever, micro_batch=2)
  whole = dataclasses.replace(retriever, micro_batch=0)
  traj, image, box = (test_split[k][:16] for k in ('trajectory', 'image', 'box'))
  np.testing.assert_allclose(
    pieces.embed_trajectories(traj), whole.embed_trajectories(traj), atol=1e-6
  )
  np.testing.assert_allclose(
    pieces.embed_images(image, box), whole.embed_images(image, box), atol=1e-6
  )

  def loops(r):  # The rasteriser's own loop is in both; the micro-batches add one.
    fn = retriever_module._embed_fn(r.method, 'trajectories', r.mesh, r.micro_batch)
    return fn.lower(r.params, r.extra, traj).as_text().count('stablehlo.while')

  assert loops(pieces) == loops(whole) + 1


def test_short_calls_pad_to_a_power_of_two_bucket(retriever):
  # Rounded up to a multiple of the local devices (the tests run on 2 CPU devices).
  devices = retriever.mesh.size
  assert retriever.batch_size == 16 and 16 % devices == 0
  expected = [max(b, devices) for b in (1, 2, 4, 8, 16, 16, 16)]
  assert [retriever.bucket(n) for n in (1, 2, 3, 5, 9, 16, 17)] == expected
  assert retriever.buckets() == sorted({max(b, devices) for b in (1, 2, 4, 8, 16)})
  assert retriever.buckets(5) == sorted({max(b, devices) for b in (1, 2, 4, 8)})


def test_the_parameter_hash_names_the_parameters(retriever):
  assert tree_hash(retriever.params) == retriever.params_hash
  changed = dict(retriever.params)
  leaves = changed['encoders']['logit_scale'] + 1
  changed['encoders'] = dict(changed['encoders'], logit_scale=leaves)
  assert tree_hash(changed) != retriever.params_hash


def test_another_model_config_is_refused(trained_workdir):
  config = test_config.get_config()
  config.model.branch_dim = 32
  with pytest.raises(checkpoint.CheckpointMismatchError, match='model.branch_dim'):
    Retriever.load(trained_workdir, config=config)
  # Where the data lives is no part of it.
  config = test_config.get_config()
  config.data.data_dir = '/elsewhere'
  config.data.in_memory = False
  assert Retriever.load(trained_workdir, config=config).step > 0


def test_no_checkpoint_is_a_clear_error(tmp_path, trained_workdir):
  with pytest.raises(FileNotFoundError, match='no checkpoint in'):
    Retriever.load(str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()  # Looking created nothing.
  with pytest.raises(FileNotFoundError, match='available'):
    Retriever.load(trained_workdir, step=12345)


@pytest.mark.parametrize(
  'which, arrays, message',
  [
    ('t', (np.zeros((2, 7, 2)),), r'must be \(N, 20, 2\)'),
    ('t', (np.full((2, 20, 2), np.nan),), 'trajectory 0 has a NaN'),
    ('i', (np.zeros((2, 32, 32, 1), np.uint8), np.zeros((2, 4))), 'must be 64 x 64'),
    ('i', (np.zeros((2, 64, 64, 3), np.uint8), np.zeros((2, 4))), 'one channel'),
    ('i', (np.zeros((2, 64, 64, 1), np.float32), np.zeros((2, 4))), 'must be uint8'),
    ('i', (np.zeros((1, 64, 64, 1), np.uint8), np.array([[1.0, 2.0, 1.0, 0.0]])), 'x_left 1.0'),
    ('i', (np.zeros((1, 64, 64, 1), np.uint8), np.array([[0.0, 0.0, 1.0, 0.0]])), 'y_top 0.0'),
    ('i', (np.zeros((1, 64, 64, 1), np.uint8), np.array([[0.0, np.inf, 1.0, 0.0]])), 'infinite'),
    ('i', (np.zeros((2, 64, 64, 1), np.uint8), np.array([[0.0, 1.0, 1.0, 0.0]])), '2 images'),
  ],
)
def test_bad_inputs_are_named(retriever, which, arrays, message):
  embed = retriever.embed_trajectories if which == 't' else retriever.embed_images
  with pytest.raises(InputError, match=message):
    embed(*arrays)


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
  buffer = io.BytesIO()
  image = Image.fromarray(array)
  (image.convert(mode) if mode else image).save(buffer, format='PNG')
  return buffer.getvalue()


def test_a_grey_png_of_the_model_size_is_read_exactly():
  array = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
  image = read_png(_png(array))
  assert image.dtype == np.uint8 and image.shape == (64, 64, 1)
  np.testing.assert_array_equal(image[..., 0], array)


@pytest.mark.parametrize(
  'data, message',
  [
    (_png(np.zeros((32, 32), np.uint8)), r'64 x 64 grey \(mode L\), got \(32, 32\) mode L'),
    (_png(np.zeros((64, 64, 3), np.uint8)), 'mode RGB'),
    (_png(np.zeros((64, 64), np.uint8), 'LA'), 'mode LA'),
    (b'not a png at all', 'not a readable image'),
  ],
)
def test_other_images_are_refused_saying_why(data, message):
  with pytest.raises(InputError, match=message):
    read_png(data)
