"""The trajcross dataset: (trajectory, image) pairs by PROTOCOL.md sections 1-4.

Two configs: 'univ' is the paper protocol on the UCY univ recordings; 'synthetic' is the same
recipe on simulated pedestrians (synthetic.py) and needs no download. `builder_config` and
`make_builder` give variants (another seed, smaller splits, ...) under their own names, so two
different builds never share a directory.

Written in array_record, so it builds and reads without TensorFlow:

  builder = make_builder('univ', data_dir)
  builder.download_and_prepare()
  test = builder.as_data_source('test')
"""

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from trajcross_jax.data import render, synthetic
from trajcross_jax.data import windows as windows_lib

# SOURCE.md: the univ files as released with Giuliari et al. (ICPR 2020), pinned to one commit.
# checksums.tsv beside this file holds their sizes and sha256.
_URL = (
  'https://raw.githubusercontent.com/FGiuliari/Trajectory-Transformer/'
  'baec1a1fe33f3c04bacb7ba563ae9cdac110d049/datasets/raw/all_data/{name}.txt'
)
_UNIV_FILES = windows_lib.TEST_FILES + windows_lib.TRAIN_FILES
# The simulated recordings, one per split so that the pools are disjoint. Their codes continue
# windows.FILE_CODES and also seed the simulator: the recordings, like univ's, are fixed data.
_SYNTHETIC_FILE_CODES = {'synthetic_train': 3, 'synthetic_test': 4}
_SYNTHETIC_SPLIT_FILES = {'train': 'synthetic_train', 'test': 'synthetic_test'}

_CITATION = """\
@article{lerner2007crowds,
  title={Crowds by Example},
  author={Lerner, Alon and Chrysanthou, Yiorgos and Lischinski, Dani},
  journal={Computer Graphics Forum},
  volume={26},
  number={3},
  pages={655--664},
  year={2007}
}"""


@dataclasses.dataclass(eq=False)
class TrajcrossConfig(tfds.core.BuilderConfig):
  """What to build.

  Attributes:
    source: 'univ' (the UCY recordings) or 'synthetic' (simulated, no download).
    seed: the split draw and every image draw derive from it (PROTOCOL.md sections 3-4).
    window_length: points per trajectory, M.
    stride: rows between the starts of consecutive windows of a track.
    train_size: trajectories drawn from the train pool.
    test_size: trajectories drawn from the test pool.
    image_size: image side in pixels.
    num_tracks: 'synthetic' only: pedestrians simulated for each split's recording.
  """

  source: str = 'univ'
  seed: int = 0
  window_length: int = 20
  stride: int = 1
  train_size: int = 10_000
  test_size: int = 2_379
  image_size: int = 64
  num_tracks: int = 500

  def __post_init__(self):
    if self.source not in ('univ', 'synthetic'):
      raise ValueError(f"source must be 'univ' or 'synthetic', got {self.source!r}")
    minimums = {
      'seed': 0,
      'window_length': 2,
      'stride': 1,
      'train_size': 1,
      'test_size': 1,
      'image_size': 1,
      'num_tracks': 1,
    }
    for field, minimum in minimums.items():
      value = getattr(self, field)
      if not isinstance(value, int) or value < minimum:
        raise ValueError(f'{field} must be an integer >= {minimum}, got {value!r}')


BUILDER_CONFIGS = (
  TrajcrossConfig(
    name='univ',
    source='univ',
    description='The paper protocol: UCY univ, train students003 + uni_examples, test students001.',
  ),
  TrajcrossConfig(
    name='synthetic',
    source='synthetic',
    description='Simulated pedestrians in a univ-sized plaza; no download.',
  ),
)
# The fields that builder_config may change; `source` and `name` come with the config's name.
_OVERRIDABLE = ('seed', 'window_length', 'stride', 'train_size', 'test_size', 'image_size')


def builder_config(name: str, **overrides: int) -> TrajcrossConfig:
  """The registered config `name` ('univ' or 'synthetic') with some fields changed.

  Without overrides (or with only default values) this is the registered config itself. Otherwise
  the config is named after what changed, e.g. 'synthetic-train_size64-test_size32', so that each
  variant builds into its own directory.

  Raises:
    ValueError: an unknown config name, a field that cannot be changed, or a bad value.
  """
  registered = {config.name: config for config in BUILDER_CONFIGS}
  if name not in registered:
    raise ValueError(f'unknown trajcross config {name!r}; choose one of {sorted(registered)}')
  base = registered[name]
  allowed = _OVERRIDABLE + (('num_tracks',) if base.source == 'synthetic' else ())
  unknown = sorted(set(overrides) - set(allowed))
  if unknown:
    raise ValueError(f'config {name!r} has no field(s) {unknown} to change; allowed: {allowed}')
  changed = {k: v for k, v in overrides.items() if getattr(base, k) != v}
  if not changed:
    return base
  suffix = '-'.join(f'{field}{changed[field]}' for field in allowed if field in changed)
  described = ', '.join(f'{field}={value}' for field, value in changed.items())
  return dataclasses.replace(
    base,
    name=f'{name}-{suffix}',
    description=f'{base.description} Changed: {described}.',
    **changed,
  )


def make_builder(name: str, data_dir: epath.PathLike | None, **overrides: int) -> 'Trajcross':
  """The builder of `builder_config(name, **overrides)` under `data_dir` (None: tfds's default)."""
  return Trajcross(config=builder_config(name, **overrides), data_dir=data_dir)


class Trajcross(tfds.core.GeneratorBasedBuilder):
  """Trajectory <-> image pairs for TRAJCROSS cross-modal retrieval."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release: PROTOCOL.md sections 1-4.'}
  BUILDER_CONFIGS = list(BUILDER_CONFIGS)
  DEFAULT_BUILDER_CONFIG_NAME = 'univ'
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Optional: without a manual directory the 'univ' files are downloaded. To build offline, put
  {', '.join(f'{name}.txt' for name in _UNIV_FILES)} in the manual directory
  (`download_config=tfds.download.DownloadConfig(manual_dir=...)`, by default
  <data_dir>/downloads/manual). They are the UCY univ recordings in world metres as released
  with Giuliari et al. (ICPR 2020); get them from {_URL.format(name='<name>')}.
  """

  def __init__(self, *, file_format: str | None = None, **kwargs: Any):
    # tfds defaults to tfrecord, which needs TensorFlow and fails only at the end of a build.
    super().__init__(file_format=file_format or 'array_record', **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    length, size = config.window_length, config.image_size
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          'trajectory': tfds.features.Tensor(
            shape=(length, 2), dtype=np.float32, doc='Points (x, y) in metres.'
          ),
          'image': tfds.features.Tensor(
            shape=(size, size, 1), dtype=np.uint8, doc='The rasterised trajectory, north up.'
          ),
          'box': tfds.features.Tensor(
            shape=(4,), dtype=np.float32, doc='Image square [x_left, y_top, x_right, y_bottom], m.'
          ),
          'line_width': tfds.features.Scalar(dtype=np.int32, doc='Line width in pixels.'),
          'source': tfds.features.Text(doc='The recording (file stem).'),
          'ped_id': tfds.features.Scalar(dtype=np.int32, doc='Pedestrian id within source.'),
          'start_frame': tfds.features.Scalar(dtype=np.int32, doc='Frame of the first point.'),
        }
      ),
      homepage='https://github.com/FGiuliari/Trajectory-Transformer',
      citation=_CITATION,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    if config.source == 'univ':
      paths = _univ_paths(dl_manager)
      split_files = {'train': windows_lib.TRAIN_FILES, 'test': windows_lib.TEST_FILES}
      pools = {
        split: windows_lib.read_pool(
          {name: paths[name] for name in names}, config.window_length, config.stride
        )
        for split, names in split_files.items()
      }
      file_codes = windows_lib.FILE_CODES
    else:
      pools = {
        split: windows_lib.make_windows(
          synthetic.simulate_tracks(_SYNTHETIC_FILE_CODES[name], config.num_tracks, source=name),
          config.window_length,
          config.stride,
        )
        for split, name in _SYNTHETIC_SPLIT_FILES.items()
      }
      file_codes = _SYNTHETIC_FILE_CODES
    sizes = {'train': config.train_size, 'test': config.test_size}
    for split, pool in pools.items():
      if sizes[split] > len(pool):
        raise ValueError(
          f'config {config.name!r}: {split}_size={sizes[split]} but the {split} pool has only '
          f'{len(pool)} windows'
        )
    return {
      split: self._generate_examples(
        windows_lib.draw(pool, sizes[split], config.seed, windows_lib.SPLIT_INDEX[split]),
        file_codes,
      )
      for split, pool in pools.items()
    }

  def _generate_examples(
    self, examples: windows_lib.Windows, file_codes: Mapping[str, int]
  ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Draws each trajectory's image (PROTOCOL.md section 4), rendering in vectorised chunks."""
    config = self.builder_config
    chunk = render.chunk_size(config.window_length, config.image_size)
    for start in range(0, len(examples), chunk):
      part = examples.take(np.arange(start, min(start + chunk, len(examples))))
      params = [
        render.draw_image_params(xy, config.seed, file_codes[source], ped_id, frame)
        for xy, source, ped_id, frame in zip(
          part.xy, part.source, part.ped_id, part.start_frame, strict=True
        )
      ]
      image_windows = np.stack([window for window, _ in params])
      widths = np.array([width for _, width in params])
      images = render.to_uint8(
        render.render_polylines(part.xy, image_windows, widths, size=config.image_size)
      )
      boxes = render.box_from_windows(image_windows)
      for i in range(len(part)):
        source, ped_id, frame = str(part.source[i]), int(part.ped_id[i]), int(part.start_frame[i])
        yield (
          f'{source}_{ped_id}_{frame}',
          {
            'trajectory': part.xy[i].astype(np.float32),
            'image': images[i, :, :, None],
            'box': boxes[i].astype(np.float32),
            'line_width': widths[i],
            'source': source,
            'ped_id': ped_id,
            'start_frame': frame,
          },
        )


def _univ_paths(dl_manager: tfds.download.DownloadManager) -> dict[str, epath.Path]:
  """The univ files: from the manual directory if it holds any of them, else downloaded."""
  try:
    manual_dir = dl_manager.manual_dir
  except AssertionError:  # tfds's way of saying there is no manual dir, or it is empty.
    manual_dir = None
  if manual_dir is not None:
    paths = {name: manual_dir / f'{name}.txt' for name in _UNIV_FILES}
    missing = [f'{name}.txt' for name, path in paths.items() if not path.exists()]
    if len(missing) < len(paths):
      if missing:
        raise FileNotFoundError(
          f'manual directory {manual_dir} lacks {", ".join(missing)} '
          f'(it needs all of {", ".join(f"{n}.txt" for n in _UNIV_FILES)})'
        )
      return paths
  return dl_manager.download({name: _URL.format(name=name) for name in _UNIV_FILES})
