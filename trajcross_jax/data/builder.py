"""The trajcross dataset: (trajectory, image) pairs by PROTOCOL.md sections 1-4.

Three kinds of config: 'univ' is the paper protocol on the UCY univ recordings (the package
ships the three files, so it builds offline; `univ_download=True` fetches a fresh copy);
'synthetic' is the same recipe on simulated pedestrians (synthetic.py), in a plaza of any size
and origin; 'custom' is the user's own recordings in any supported format (custom.py), named by
a hash of their content and options. `builder_config` and `make_builder` give variants (another
seed, smaller splits, ...) under their own names, so two different builds never share a
directory.

Every build stores its scene frame (normalisation.py: the training split's centre and scale)
and, for lon/lat data, its projection in the dataset's metadata (`info.metadata`).

Written in array_record, so it builds and reads without TensorFlow:

  builder = make_builder('univ', data_dir)
  builder.download_and_prepare()
  test = builder.as_data_source('test')
"""

import dataclasses
import gzip
import hashlib
import json
import socket
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from trajcross_jax.data import custom, render, synthetic
from trajcross_jax.data import hard as hard_lib
from trajcross_jax.data import normalisation as normalisation_lib
from trajcross_jax.data import tracks as tracks_lib
from trajcross_jax.data import windows as windows_lib

# SOURCE.md: the univ files as released with Giuliari et al. (ICPR 2020), pinned to one commit.
# checksums.tsv beside this file holds their sizes and sha256.
_URL = (
  'https://raw.githubusercontent.com/FGiuliari/Trajectory-Transformer/'
  'baec1a1fe33f3c04bacb7ba563ae9cdac110d049/datasets/raw/all_data/{name}.txt'
)
_UNIV_FILES = windows_lib.TEST_FILES + windows_lib.TRAIN_FILES
# The package's own gzipped copies of the univ files, checked against checksums.tsv on use.
_PACKAGED_UNIV = epath.Path(__file__).parent / 'univ'
_CHECKSUMS = epath.Path(__file__).parent / 'checksums.tsv'
# How long the download's first connection may take before the build gives up (tfds itself
# retries for minutes).
_CONNECT_TIMEOUT_S = 5.0
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
    source: 'univ' (the UCY recordings), 'synthetic' (simulated) or 'custom' (the user's files).
    seed: the split draw and every image draw derive from it (PROTOCOL.md sections 3-4).
    window_length: points per trajectory, M.
    stride: rows between the starts of consecutive windows of a track.
    train_size: trajectories drawn from the train pool ('custom': 0 takes the whole pool).
    test_size: trajectories drawn from the test pool ('custom': 0 takes the whole pool).
    image_size: image side in pixels.
    num_tracks: 'synthetic' only: pedestrians simulated for each split's recording.
    plaza: 'synthetic' only: (width, height) of the simulated plaza, metres.
    origin: 'synthetic' only: (x, y) of the plaza's lower-left corner, metres.
    files: 'custom' only: the recordings, resolved paths sorted by name.
    options: 'custom' only: how to read, resample and split them.
    hard: the hard protocol's rules (data/hard.py); the default is the paper protocol. When any
      applies, 'trajectory' is the noisy observation and a 'track' feature holds the true track
      that the image shows; with the crowd rule a 'crowd' feature holds the other paths drawn.
  """

  source: str = 'univ'
  seed: int = 0
  window_length: int = 20
  stride: int = 1
  train_size: int = 10_000
  test_size: int = 2_379
  image_size: int = 64
  num_tracks: int = 500
  plaza: tuple[float, float] = (16.0, 14.0)
  origin: tuple[float, float] = (0.0, 0.0)
  files: tuple[str, ...] = ()
  options: custom.Options = dataclasses.field(default_factory=custom.Options)
  hard: hard_lib.HardOptions = dataclasses.field(default_factory=hard_lib.HardOptions)

  def __post_init__(self):
    if self.source not in SOURCES:
      raise ValueError(f'source must be one of {SOURCES}, got {self.source!r}')
    if not isinstance(self.hard, hard_lib.HardOptions):
      raise ValueError(f'hard must be a HardOptions, got {self.hard!r}')
    minimums = {
      'seed': 0,
      'window_length': 2,
      'stride': 1,
      'train_size': 0 if self.source == 'custom' else 1,
      'test_size': 0 if self.source == 'custom' else 1,
      'image_size': 1,
      'num_tracks': 1,
    }
    for field, minimum in minimums.items():
      value = getattr(self, field)
      if not isinstance(value, int) or value < minimum:
        raise ValueError(f'{field} must be an integer >= {minimum}, got {value!r}')
    if len(self.plaza) != 2 or min(self.plaza) <= 0:
      raise ValueError(f'plaza must be a positive (width, height) in metres, got {self.plaza!r}')
    if len(self.origin) != 2:
      raise ValueError(f'origin must be an (x, y) in metres, got {self.origin!r}')
    if self.source == 'custom' and not self.files:
      raise ValueError("a 'custom' dataset needs files")


SOURCES = ('univ', 'synthetic', 'custom')
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
  TrajcrossConfig(
    name='univ_hard',
    source='univ',
    hard=hard_lib.HARD,
    description="univ's pairs under the hard rules (data/hard.py): noisy tracks, images drawn "
    "resampled, as blurred dots on a textured, noisy background, with other pedestrians' paths.",
  ),
  TrajcrossConfig(
    name='synthetic_hard',
    source='synthetic',
    hard=hard_lib.HARD,
    description="synthetic's pairs under the hard rules (data/hard.py).",
  ),
)
# The fields that builder_config may change; `source` and `name` come with the config's name.
_OVERRIDABLE = ('seed', 'window_length', 'stride', 'train_size', 'test_size', 'image_size', 'hard')
_SYNTHETIC_ONLY = ('num_tracks', 'plaza', 'origin')


DATASETS = tuple(c.name for c in BUILDER_CONFIGS) + ('custom',)


def registered(name: str) -> TrajcrossConfig:
  """The registered config `name` ('univ', 'synthetic', 'univ_hard', ...)."""
  for config in BUILDER_CONFIGS:
    if config.name == name:
      return config
  raise ValueError(
    f'unknown trajcross config {name!r}; choose one of {sorted(c.name for c in BUILDER_CONFIGS)}'
  )


def builder_config(name: str, **overrides: int) -> TrajcrossConfig:
  """The registered config `name` ('univ' or 'synthetic') with some fields changed.

  Without overrides (or with only default values) this is the registered config itself. Otherwise
  the config is named after what changed, e.g. 'synthetic-train_size64-test_size32', so that each
  variant builds into its own directory.

  Raises:
    ValueError: an unknown config name, a field that cannot be changed, or a bad value.
  """
  base = registered(name)
  allowed = _OVERRIDABLE + (_SYNTHETIC_ONLY if base.source == 'synthetic' else ())
  unknown = sorted(set(overrides) - set(allowed))
  if unknown:
    raise ValueError(f'config {name!r} has no field(s) {unknown} to change; allowed: {allowed}')
  changed = {k: v for k, v in overrides.items() if getattr(base, k) != v}
  if not changed:
    return base
  parts = [f'{f}{_name_part(changed[f])}' for f in allowed if f in changed and f != 'hard']
  if 'hard' in changed:  # Named by the rules that differ from the base config's.
    ours, theirs = dataclasses.asdict(changed['hard']), dataclasses.asdict(base.hard)
    parts += [f'{k}{_name_part(v)}' for k, v in ours.items() if theirs[k] != v]
  suffix = '-'.join(parts)
  described = ', '.join(f'{field}={value}' for field, value in changed.items())
  return dataclasses.replace(
    base,
    name=f'{name}-{suffix}',
    description=f'{base.description} Changed: {described}.',
    **changed,
  )


def _name_part(value) -> str:
  """A field's value as it appears in a config name: tuples as 30x20, no spaces or brackets."""
  if isinstance(value, tuple | list):
    return 'x'.join(_name_part(v) for v in value)
  return f'{value:g}' if isinstance(value, float) else str(value)


def custom_config(
  files: str | Sequence[str], options: custom.Options, **overrides: int
) -> TrajcrossConfig:
  """A config of the user's recordings, named 'custom-<hash>' by their content and options.

  The name depends on what the files hold and how they are read, not on where they lie, so the
  same recordings build into the same directory from anywhere, and any change (one edited
  row, another time step) builds anew.
  """
  paths = custom.resolve_files(files)
  digest = hashlib.sha256()
  for path in paths:
    digest.update(path.stem.encode() + b'\0' + hashlib.sha256(path.read_bytes()).digest())
  base = TrajcrossConfig(name='custom', source='custom', files=('-',), options=options)
  fields = {f: overrides.get(f, getattr(base, f)) for f in _OVERRIDABLE}
  named = {f: v for f, v in fields.items() if f != 'hard'}
  if fields['hard'].active:  # Only then: the names of plain custom datasets stay as they were.
    named['hard'] = dataclasses.asdict(fields['hard'])
  digest.update(json.dumps([dataclasses.asdict(options), named], sort_keys=True).encode())
  return dataclasses.replace(
    base,
    name=f'custom-{digest.hexdigest()[:12]}',
    description=f'Your recordings: {len(paths)} {options.format} file(s).',
    files=tuple(str(p) for p in paths),
    **fields,
  )


def make_builder(
  name: str,
  data_dir: epath.PathLike | None,
  *,
  univ_download: bool = False,
  **overrides: int,
) -> 'Trajcross':
  """The builder of `builder_config(name, **overrides)` under `data_dir` (None: tfds's default)."""
  return Trajcross(
    config=builder_config(name, **overrides), data_dir=data_dir, univ_download=univ_download
  )


class Trajcross(tfds.core.GeneratorBasedBuilder):
  """Trajectory <-> image pairs for TRAJCROSS cross-modal retrieval."""

  VERSION = tfds.core.Version('1.2.0')
  RELEASE_NOTES = {
    '1.0.0': 'First release: PROTOCOL.md sections 1-4.',
    '1.1.0': 'track_id feature; scene frame (and projection) in the metadata; custom data; '
    'images stored zlib-compressed.',
    '1.2.0': "The hard rules' crowd (a 'crowd' feature) and resampling; univ_hard's noise "
    'sizes 0.1 m and 0.2 m (were 0.2 m and 0.5 m). The paper protocol is unchanged.',
  }
  BUILDER_CONFIGS = list(BUILDER_CONFIGS)
  DEFAULT_BUILDER_CONFIG_NAME = 'univ'
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Optional: the package ships the 'univ' files. To build from other copies, put
  {', '.join(f'{name}.txt' for name in _UNIV_FILES)} in the manual directory
  (`download_config=tfds.download.DownloadConfig(manual_dir=...)`). They are the UCY univ
  recordings in world metres as released with Giuliari et al. (ICPR 2020); get them from
  {_URL.format(name='<name>')}.
  """

  def __init__(self, *, file_format: str | None = None, univ_download: bool = False, **kwargs: Any):
    # tfds defaults to tfrecord, which needs TensorFlow and fails only at the end of a build.
    super().__init__(file_format=file_format or 'array_record', **kwargs)
    self.univ_download = univ_download

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    length, size = config.window_length, config.image_size
    track = {}
    if config.hard.active:  # The true track, for re-drawing training images by the same rules.
      track['track'] = tfds.features.Tensor(
        shape=(length, 2), dtype=np.float32, doc='The track the image shows, metres.'
      )
    if config.hard.crowd > 0:  # And the other paths it shows (hard.crowd_paths).
      track['crowd'] = tfds.features.Tensor(
        shape=(hard_lib.CROWD_SLOTS, length, 2),
        dtype=np.float32,
        doc="Other pedestrians' paths at the trajectory's frames, nearest first; NaN: no one.",
      )
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          'trajectory': tfds.features.Tensor(
            shape=(length, 2),
            dtype=np.float32,
            doc='Points (x, y) in metres (hard configs: a noisy observation of the track).',
          ),
          **track,
          # zlib: a line image is mostly zeros (4 KB -> a few hundred bytes). Without
          # TensorFlow, tfds holds a split's serialised examples in memory and cannot spill past
          # 1 GB, so compression is what lets a split hold millions of pairs.
          'image': tfds.features.Tensor(
            shape=(size, size, 1),
            dtype=np.uint8,
            doc='The rasterised trajectory, north up.',
            encoding='zlib',
          ),
          'box': tfds.features.Tensor(
            shape=(4,), dtype=np.float32, doc='Image square [x_left, y_top, x_right, y_bottom], m.'
          ),
          'line_width': tfds.features.Scalar(dtype=np.int32, doc='Line width in pixels.'),
          'source': tfds.features.Text(doc='The recording (file stem).'),
          'ped_id': tfds.features.Scalar(dtype=np.int32, doc='Pedestrian id within source.'),
          'track_id': tfds.features.Text(doc="The track's id as the recording names it."),
          'start_frame': tfds.features.Scalar(dtype=np.int32, doc='Frame of the first point.'),
        }
      ),
      metadata=tfds.core.MetadataDict(),
      homepage='https://github.com/FGiuliari/Trajectory-Transformer',
      citation=_CITATION,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    track_ids = None
    if config.source == 'univ':
      paths = self._univ_paths(dl_manager)
      split_files = {'train': windows_lib.TRAIN_FILES, 'test': windows_lib.TEST_FILES}
      tracks = {
        split: [t for name in names for t in tracks_lib.read_tracks(paths[name], source=name)]
        for split, names in split_files.items()
      }
      file_codes = windows_lib.FILE_CODES
    elif config.source == 'synthetic':
      tracks = {
        split: synthetic.simulate_tracks(
          _SYNTHETIC_FILE_CODES[name],
          config.num_tracks,
          source=name,
          plaza=config.plaza,
          origin=config.origin,
        )
        for split, name in _SYNTHETIC_SPLIT_FILES.items()
      }
      file_codes = _SYNTHETIC_FILE_CODES
    else:
      tracks, file_codes, track_ids = self._custom_tracks()
    pools = {
      split: windows_lib.make_windows(part, config.window_length, config.stride)
      for split, part in tracks.items()
    }
    if config.source == 'custom':
      self._log_pools(tracks, pools)
    sizes = {'train': config.train_size, 'test': config.test_size}
    for split, pool in pools.items():
      if sizes[split] > len(pool) or not len(pool):
        raise ValueError(
          f'config {config.name!r}: {split}_size={sizes[split]} but the {split} pool has only '
          f'{len(pool)} windows of {config.window_length} points'
        )
    examples = {
      split: windows_lib.draw(pool, sizes[split], config.seed, windows_lib.SPLIT_INDEX[split])
      if sizes[split]
      else pool
      for split, pool in pools.items()
    }
    frame = normalisation_lib.from_points(examples['train'].xy)
    self.info.metadata[normalisation_lib.METADATA_KEY] = frame.to_json()
    return {
      split: self._generate_examples(part, file_codes, track_ids, tracks[split])
      for split, part in examples.items()
    }

  def _custom_tracks(self):
    """The user's recordings as train and test tracks (custom.py), their codes and track ids."""
    config = self.builder_config
    files = [epath.Path(f) for f in config.files]
    recordings = custom.load(files, config.options)
    if recordings.projection is not None:
      self.info.metadata['projection'] = recordings.projection.to_json()
    parts = custom.split(recordings, files, config.options, config.seed)
    file_codes = {f.stem: i for i, f in enumerate(files)}
    return parts, file_codes, recordings.track_ids

  def _log_pools(self, parts, pools) -> None:
    """Says what became of the user's data: short pieces give no window."""
    config = self.builder_config
    for split, part in parts.items():
      short = sum(len(t) < config.window_length for t in part)
      logging.info(
        '%s: %d gap-free pieces of %d tracks, %d points -> %d windows of %d points '
        '(%d pieces shorter than that give none)',
        split,
        len(part),
        len({(t.source, t.ped_id) for t in part}),
        sum(len(t) for t in part),
        len(pools[split]),
        config.window_length,
        short,
      )

  def _generate_examples(
    self,
    examples: windows_lib.Windows,
    file_codes: Mapping[str, int],
    track_ids: Mapping[tuple[str, int], str] | None,
    tracks: Sequence[tracks_lib.Track],
  ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Draws each trajectory's image (PROTOCOL.md section 4), rendering in vectorised chunks.

    `tracks` are the split's recordings, whose other pedestrians the crowd rule draws."""
    config = self.builder_config
    size = config.image_size
    crowds = hard_lib.crowd_paths(tracks, examples) if config.hard.crowd > 0 else None
    chunk = render.chunk_size(config.window_length, size)
    if crowds is not None:  # Each image draws its other paths too.
      chunk = max(1, chunk // (1 + hard_lib.CROWD_SLOTS))
    for start in range(0, len(examples), chunk):
      indices = np.arange(start, min(start + chunk, len(examples)))
      part = examples.take(indices)
      crowd = None if crowds is None else crowds[indices]
      params = [
        render.draw_image_params(xy, config.seed, file_codes[source], ped_id, frame)
        for xy, source, ped_id, frame in zip(
          part.xy, part.source, part.ped_id, part.start_frame, strict=True
        )
      ]
      image_windows = np.stack([window for window, _ in params])
      widths = np.array([width for _, width in params])
      observed = part.xy
      if config.hard.active:
        draws = hard_lib.stack_draws(
          [
            hard_lib.example_draws(
              config.seed, file_codes[source], ped_id, frame, config.window_length, size
            )
            for source, ped_id, frame in zip(
              part.source, part.ped_id, part.start_frame, strict=True
            )
          ]
        )
        drawn = hard_lib.draw(part.xy, image_windows, widths, config.hard, draws, size, crowd=crowd)
        observed = hard_lib.observe(part.xy, config.hard, draws)
      else:
        drawn = render.render_polylines(part.xy, image_windows, widths, size=size)
      images = render.to_uint8(drawn)
      boxes = render.box_from_windows(image_windows)
      for i in range(len(part)):
        source, ped_id, frame = str(part.source[i]), int(part.ped_id[i]), int(part.start_frame[i])
        track = {'track': part.xy[i].astype(np.float32)} if config.hard.active else {}
        if crowd is not None:
          track['crowd'] = crowd[i].astype(np.float32)
        yield (
          f'{source}_{ped_id}_{frame}',
          {
            'trajectory': observed[i].astype(np.float32),
            **track,
            'image': images[i, :, :, None],
            'box': boxes[i].astype(np.float32),
            'line_width': widths[i],
            'source': source,
            'ped_id': ped_id,
            'track_id': track_ids[source, ped_id] if track_ids else str(ped_id),
            'start_frame': frame,
          },
        )

  def _univ_paths(self, dl_manager: tfds.download.DownloadManager) -> dict[str, epath.Path]:
    """The univ files: from the manual directory, else downloaded if asked, else the package's."""
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
    if self.univ_download:
      return _download_univ(dl_manager)
    return _unpack_univ(dl_manager.download_dir / 'packaged_univ')


class DownloadError(OSError):
  """The univ files could not be downloaded; the message says what to do instead."""


def _download_univ(dl_manager: tfds.download.DownloadManager) -> dict[str, epath.Path]:
  """Downloads the univ files, failing within seconds (not tfds's minutes) when offline."""
  urls = {name: _URL.format(name=name) for name in _UNIV_FILES}
  host = urllib.parse.urlparse(_URL).hostname
  advice = (
    'build from the copies in the package (drop --config.data.download) or from a directory '
    'holding the three files (--config.data.manual_dir=DIR)'
  )
  try:
    socket.create_connection((host, 443), timeout=_CONNECT_TIMEOUT_S).close()
  except OSError as e:
    raise DownloadError(f'cannot reach {host} to download the univ files ({e}); {advice}') from None
  try:
    return dl_manager.download(urls)
  except Exception as e:  # tfds raises requests', urllib3's and its own errors: say one thing.
    raise DownloadError(f'downloading the univ files failed ({type(e).__name__}); {advice}') from e


def packaged_univ_checksums() -> dict[str, str]:
  """sha256 of each univ file, by name, from checksums.tsv (the pinned download's record)."""
  out = {}
  for line in _CHECKSUMS.read_text().splitlines():
    if line.strip():
      _, _, sha256, filename = line.split('\t')
      out[epath.Path(filename).stem] = sha256
  return out


def _unpack_univ(directory: epath.Path) -> dict[str, epath.Path]:
  """The package's univ files, unpacked into `directory` after checking their sha256."""
  checksums = packaged_univ_checksums()
  directory.mkdir(parents=True, exist_ok=True)
  paths = {}
  for name in _UNIV_FILES:
    data = gzip.decompress((_PACKAGED_UNIV / f'{name}.txt.gz').read_bytes())
    if hashlib.sha256(data).hexdigest() != checksums[name]:
      raise ValueError(
        f'the packaged {name}.txt does not match its checksum in {_CHECKSUMS}: reinstall the '
        'package, or build with --config.data.manual_dir=DIR'
      )
    paths[name] = directory / f'{name}.txt'
    paths[name].write_bytes(data)
  return paths
