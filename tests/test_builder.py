"""Tests for trajcross_jax.data.builder: the 'trajcross' tfds dataset.

tfds.testing.DatasetBuilderTestCase cannot run here: it is a tf.test.TestCase (it needs TensorFlow,
and dill) and reads through `as_dataset`. TestDummyData makes the same checks without TensorFlow,
reading through `as_data_source`: registration, info, a build from dummy data in the manual dir,
split sizes, every example against the features, no example in two splits, reload, checksums.
"""

import hashlib
import os
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import trajcross_jax.data  # noqa: F401  Registers 'trajcross'.
from trajcross_jax.data import builder, pipeline, render, tracks, windows

DUMMY_DATA = pathlib.Path(builder.__file__).parent / 'dummy_data'
# The dummy pools: 10 train windows (students003, uni_examples), 13 test windows (students001,
# where pedestrian 9 has a frame gap and gives windows on both sides of it).
DUMMY_SIZES = {'train': 6, 'test': 5}


def univ_dir() -> pathlib.Path:
  """The real univ files: $TRAJCROSS_UNIV_DIR, else <repo>/../shared/data/univ."""
  default = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'univ'
  return pathlib.Path(os.environ.get('TRAJCROSS_UNIV_DIR', default))


def prepare(data_builder, manual_dir=None):
  data_builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
  )
  return data_builder


def read_split(data_builder, split: str) -> list[dict]:
  source = data_builder.as_data_source(split=split)
  return list(source.__getitems__(range(len(source))))


def example_key(example: dict) -> tuple[str, int, int]:
  return example['source'].decode(), example['ped_id'], example['start_frame']


def check_pairs(examples: list[dict], pool: windows.Windows, file_codes, seed: int, size: int):
  """Each stored example is its window of `pool`, drawn and rendered by the protocol."""
  index = {
    key: i
    for i, key in enumerate(
      zip(pool.source, pool.ped_id.tolist(), pool.start_frame.tolist(), strict=True)
    )
  }
  for example in examples:
    source, ped_id, frame = example_key(example)
    xy = pool.xy[index[source, ped_id, frame]]
    window, width = render.draw_image_params(xy, seed, file_codes[source], ped_id, frame)
    image = render.to_uint8(render.render_polylines(xy[None], window[None], [width], size=size))
    np.testing.assert_array_equal(example['trajectory'], xy.astype(np.float32))
    np.testing.assert_array_equal(example['image'], image[0, :, :, None])
    np.testing.assert_array_equal(
      example['box'], render.box_from_windows(window).astype(np.float32)
    )
    assert example['line_width'] == width


class TestDummyData:
  """DatasetBuilderTestCase's checks on the dummy univ files, without TensorFlow."""

  @pytest.fixture(scope='class')
  @classmethod
  def built(cls, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp('tfds')
    data_builder = builder.make_builder('univ', data_dir, train_size=6, test_size=5)
    return prepare(data_builder, manual_dir=DUMMY_DATA)

  def test_registered_with_array_record_by_default(self, tmp_path):
    assert 'trajcross' in tfds.list_builders(with_community_datasets=False)
    plain = tfds.builder('trajcross/univ', data_dir=tmp_path)
    assert isinstance(plain, builder.Trajcross)
    assert plain.info.file_format == tfds.core.FileFormat.ARRAY_RECORD
    assert tfds.builder('trajcross', data_dir=tmp_path).builder_config.name == 'univ'

  def test_info(self, built):
    features = built.info.features
    assert features['trajectory'].shape == (20, 2) and features['trajectory'].np_dtype == np.float32
    assert features['image'].shape == (64, 64, 1) and features['image'].np_dtype == np.uint8
    assert features['box'].shape == (4,) and features['box'].np_dtype == np.float32
    assert built.info.full_name == 'trajcross/univ-train_size6-test_size5/1.2.0'
    assert str(builder.Trajcross.VERSION) in built.info.release_notes

  def test_metadata_holds_the_training_split_frame(self, built):
    train = np.stack([e['trajectory'] for e in read_split(built, 'train')]).astype(np.float64)
    lo, hi = train.reshape(-1, 2).min(0), train.reshape(-1, 2).max(0)
    frame = pipeline.normalisation(built)
    np.testing.assert_allclose(frame.center, (lo + hi) / 2, rtol=1e-6)
    np.testing.assert_allclose(frame.scale, (hi - lo).max() / 2, rtol=1e-6)
    assert pipeline.projection(built) is None  # Metres in, no projection.
    # A reload from disk reads the same frame.
    again = builder.make_builder('univ', built.data_dir_root, train_size=6, test_size=5)
    assert pipeline.normalisation(again) == frame

  def test_split_sizes(self, built):
    assert {s: built.info.splits[s].num_examples for s in DUMMY_SIZES} == DUMMY_SIZES

  def test_examples_match_the_features(self, built):
    for split, size in DUMMY_SIZES.items():
      examples = read_split(built, split)
      assert len(examples) == size
      for example in examples:
        assert set(example) == set(built.info.features)
        for name in ('trajectory', 'image', 'box'):
          feature = built.info.features[name]
          assert example[name].shape == feature.shape and example[name].dtype == feature.np_dtype
        assert all(isinstance(example[k], int) for k in ('line_width', 'ped_id', 'start_frame'))
        assert isinstance(example['source'], bytes)

  def test_examples_are_the_protocol_pairs(self, built):
    for split, names in (('train', windows.TRAIN_FILES), ('test', windows.TEST_FILES)):
      pool = windows.read_pool({name: DUMMY_DATA / f'{name}.txt' for name in names})
      drawn = windows.draw(pool, DUMMY_SIZES[split], 0, windows.SPLIT_INDEX[split])
      examples = read_split(built, split)
      expected = zip(drawn.source, drawn.ped_id.tolist(), drawn.start_frame.tolist(), strict=True)
      assert sorted(map(example_key, examples)) == sorted(expected)
      check_pairs(examples, pool, windows.FILE_CODES, seed=0, size=64)

  def test_no_example_in_two_splits(self, built):
    digest = lambda e: hashlib.md5(e['trajectory'].tobytes() + e['image'].tobytes()).hexdigest()
    train, test = ({digest(e) for e in read_split(built, s)} for s in ('train', 'test'))
    assert len(train) == DUMMY_SIZES['train'] and not train & test

  def test_reload(self, built):
    reloaded = builder.make_builder('univ', built.data_dir_root, train_size=6, test_size=5)
    assert reloaded.is_prepared()
    assert {s: reloaded.info.splits[s].num_examples for s in DUMMY_SIZES} == DUMMY_SIZES
    first = reloaded.as_data_source(split='test')[0]
    np.testing.assert_array_equal(first['image'], built.as_data_source(split='test')[0]['image'])

  def test_checksums_register_the_pinned_urls(self):
    infos = builder.Trajcross.url_infos
    for name in windows.FILE_CODES:
      url = (
        'https://raw.githubusercontent.com/FGiuliari/Trajectory-Transformer/'
        f'baec1a1fe33f3c04bacb7ba563ae9cdac110d049/datasets/raw/all_data/{name}.txt'
      )
      data = (univ_dir() / f'{name}.txt').read_bytes()
      assert infos[url].size == len(data)
      assert infos[url].checksum == hashlib.sha256(data).hexdigest()
    assert len(infos) == 3


def test_a_manual_dir_missing_a_file_is_named(tmp_path):
  manual = tmp_path / 'manual'
  manual.mkdir()
  shutil.copy(DUMMY_DATA / 'students001.txt', manual)
  with pytest.raises(FileNotFoundError, match='lacks students003.txt, uni_examples.txt'):
    prepare(builder.make_builder('univ', tmp_path / 'tfds', train_size=6, test_size=5), manual)


def test_a_bad_file_reaches_the_caller_with_its_line(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(DUMMY_DATA, manual)
  bad = manual / 'uni_examples.txt'
  lines = bad.read_text().splitlines()
  lines[6] = '60.0\t1.0\tx\t3.0'
  bad.write_text('\n'.join(lines))
  with pytest.raises(tracks.TrackFileError, match=f"{bad}:7: x 'x' is not a number"):
    prepare(builder.make_builder('univ', tmp_path / 'tfds', train_size=6, test_size=5), manual)


def test_a_split_larger_than_its_pool_is_refused(tmp_path):
  with pytest.raises(ValueError, match='train_size=11 but the train pool has only 10 windows'):
    prepare(builder.make_builder('univ', tmp_path, train_size=11, test_size=5), DUMMY_DATA)


def test_builder_config_names_its_changes():
  assert builder.builder_config('univ') is builder.BUILDER_CONFIGS[0]
  assert builder.builder_config('synthetic', seed=0, test_size=2_379).name == 'synthetic'
  config = builder.builder_config('synthetic', test_size=32, seed=3, train_size=64)
  assert config.name == 'synthetic-seed3-train_size64-test_size32'
  assert (config.source, config.seed, config.train_size, config.test_size) == (
    'synthetic',
    3,
    64,
    32,
  )
  assert builder.builder_config('synthetic', num_tracks=20).name == 'synthetic-num_tracks20'


@pytest.mark.parametrize(
  'name, overrides, message',
  [
    ('ucy', {}, "unknown trajcross config 'ucy'"),
    ('univ', {'num_tracks': 20}, r"no field\(s\) \['num_tracks'\]"),
    ('univ', {'source': 'synthetic'}, r"no field\(s\) \['source'\]"),
    ('synthetic', {'seed': -1}, 'seed must be an integer >= 0, got -1'),
    ('synthetic', {'window_length': 1}, 'window_length must be an integer >= 2'),
  ],
)
def test_builder_config_refuses_bad_requests(name, overrides, message):
  with pytest.raises(ValueError, match=message):
    builder.builder_config(name, **overrides)


def test_univ_paper_protocol(tmp_path):
  data_builder = prepare(tfds.builder('trajcross/univ', data_dir=tmp_path), univ_dir())
  assert data_builder.info.splits['train'].num_examples == 10_000
  assert data_builder.info.splits['test'].num_examples == 2_379
  train, test = read_split(data_builder, 'train'), read_split(data_builder, 'test')
  pedestrians = lambda split: {(e['source'], e['ped_id']) for e in split}
  train_pedestrians, test_pedestrians = pedestrians(train), pedestrians(test)
  assert {s for s, _ in train_pedestrians} == {b'students003', b'uni_examples'}
  assert {s for s, _ in test_pedestrians} == {b'students001'}
  assert not train_pedestrians & test_pedestrians
  for examples, names in ((train, windows.TRAIN_FILES), (test, windows.TEST_FILES)):
    pool = windows.read_pool({name: univ_dir() / f'{name}.txt' for name in names})
    check_pairs(examples[::397], pool, windows.FILE_CODES, seed=0, size=64)


def test_same_seed_same_bytes_other_seed_other_draw(tmp_path):
  def build(directory, seed):
    data_builder = builder.make_builder(
      'synthetic', tmp_path / directory, seed=seed, train_size=64, test_size=32
    )
    prepare(data_builder)
    return data_builder, {
      path.name: path.read_bytes()
      for path in pathlib.Path(data_builder.data_dir).glob('*array_record*')
    }

  first, first_files = build('a', seed=0)
  _, again_files = build('b', seed=0)
  other, other_files = build('c', seed=1)
  assert len(first_files) == 2 and first_files == again_files
  assert other.builder_config.name == 'synthetic-seed1-train_size64-test_size32'
  first_test, other_test = read_split(first, 'test'), read_split(other, 'test')
  assert {example_key(e) for e in first_test} != {example_key(e) for e in other_test}
  # Pools are disjoint: the simulated train and test recordings differ.
  assert {e['source'] for e in read_split(first, 'train')} == {b'synthetic_train'}
  assert {e['source'] for e in first_test} == {b'synthetic_test'}


def test_synthetic_default_pools_hold_the_default_sizes(tmp_path):
  # The registered 'synthetic' sizes, with tiny images so that the build takes a second.
  data_builder = prepare(builder.make_builder('synthetic', tmp_path, image_size=8))
  assert data_builder.info.splits['train'].num_examples == 10_000
  assert data_builder.info.splits['test'].num_examples == 2_379
  assert data_builder.as_data_source('test')[0]['image'].shape == (8, 8, 1)
