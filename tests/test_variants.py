"""Each ablation config changes the parameter tree exactly as the variant means, and runs."""

import importlib

import jax
import pytest
from flax import traverse_util

from configs import default
from configs import test as test_config
from trajcross_jax import evaluate, train
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import get_method

# A univ-sized scene frame (the models' inputs lie in about [2, 16] m).
FRAME = Normalisation(center=(8.0, 7.0), scale=8.0)

VARIANTS = ('nogan', 'disc_cosine', 'noxy', 'onlytraj', 'trajcnn')


def _param_paths(config, batch):
  params, _ = get_method(config, FRAME).init(jax.random.key(0), batch)
  return set(traverse_util.flatten_dict(params, sep='/'))


def _variant(name):
  return importlib.import_module(f'configs.{name}').get_config()


def _config_diff(a, b):
  fa = traverse_util.flatten_dict(a.to_dict(), sep='.')
  fb = traverse_util.flatten_dict(b.to_dict(), sep='.')
  return {k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}


@pytest.mark.parametrize(
  'name,field',
  [
    ('nogan', 'model.adversarial'),
    ('disc_cosine', 'train.disc_schedule'),
    ('noxy', 'model.use_box'),
    ('onlytraj', 'model.traj_shape_branch'),
    ('trajcnn', 'model.traj_shape_branch'),
  ],
)
def test_variant_config_changes_one_field(name, field):
  # And each sets the re-ranker off: Table II compares bi-encoders.
  assert _config_diff(default.get_config(), _variant(name)) == {field, 'rerank.enabled'}


def test_parameter_trees_differ_exactly_as_intended(tiny_batch):
  base = default.get_config()
  ref = _param_paths(base, tiny_batch)
  trees = {n: _param_paths(_variant(n), tiny_batch) for n in VARIANTS}

  assert any(p.startswith('discriminator/') for p in ref)
  assert trees['nogan'] == {p for p in ref if not p.startswith('discriminator/')}
  assert trees['disc_cosine'] == ref  # Only the classifier's learning rate schedule differs.

  box = {p for p in ref if p.startswith('encoders/image/box_embed/')}
  assert box
  noxy_missing = ref - trees['noxy']
  assert box <= noxy_missing
  # Without the box the WCNN output is the position branch itself: no fuse Dense either.
  assert {p.split('/')[2] for p in noxy_missing} == {'box_embed', 'fuse'}
  assert trees['noxy'] - ref == set()

  raster = {p for p in ref if p.startswith('encoders/trajectory/shape_cnn/')}
  assert raster
  assert trees['onlytraj'] == ref - raster
  seq = trees['trajcnn'] - ref
  assert seq and all(p.startswith('encoders/trajectory/seq_') for p in seq)
  assert ref - trees['trajcnn'] == raster


@pytest.mark.parametrize('name', VARIANTS)
def test_tiny_run_of_each_variant_trains_and_evaluates(name, tmp_path, synthetic_data_dir):
  config = test_config.get_config()
  changed = _variant(name)
  for field in _config_diff(default.get_config(), changed):
    section, key = field.split('.')
    config[section][key] = changed[section][key]
  config.data.data_dir = synthetic_data_dir
  config.train.num_epochs = 1
  train.train(config, str(tmp_path))
  results = evaluate.evaluate(config, str(tmp_path))
  assert results['num_test'] == config.data.test_size
  assert 1 <= results['traj2img']['mean_rank'] <= config.data.test_size
