"""The user's own recordings: files in any supported format -> tracks in metres -> split pools.

The steps, in order:
1. read every file with its format's reader (readers.py), keeping each point's time and where
   in the file it came from;
2. project lon/lat to one local metric frame for the whole dataset (geo.py), chosen from the
   data and stored with the dataset;
3. cut each track into pieces at gaps and resample it (resample.py): 'none' keeps the points as
   they are (integer frames, split where the step differs from the file's usual step, the univ
   rule), 'time' samples it at a fixed time step, linear in time, 'distance' at a fixed arc
   length;
4. split the tracks into train and test by whole tracks (no track in both) or by file.

A track id of the user's becomes an integer `ped_id` (the id itself when all of a file's ids are
integers, else its position among the file's sorted ids); the id's text is kept with every
example (the `track_id` feature).
"""

import collections
import dataclasses
import glob
from collections.abc import Sequence

import numpy as np
from etils import epath

from trajcross_jax.data import geo, readers, resample
from trajcross_jax.data import tracks as tracks_lib

FORMATS = tuple(readers.READERS)
RESAMPLINGS = ('none', 'time', 'distance')
SPLIT_BY = ('track', 'file')
BAD_ROWS = ('error', 'skip')


class CustomDataError(ValueError):
  """The user's dataset cannot be built as configured; the message says what and where."""


@dataclasses.dataclass(frozen=True)
class Options:
  """How to read and cut the user's recordings (configs/custom.py documents each field)."""

  format: str = 'tracks'
  columns: tuple[tuple[str, str], ...] = ()
  delimiter: str = ''
  track_property: str = ''
  time_property: str = ''
  projection: str = 'local'
  resample: str = 'none'
  time_step: float = 0.4
  spacing: float = 0.5
  max_gap: float = 10.0
  split_by: str = 'track'
  test_fraction: float = 0.2
  test_files: tuple[str, ...] = ()
  on_bad_row: str = 'error'

  def __post_init__(self):
    choices = {
      'format': FORMATS,
      'projection': geo.KINDS,
      'resample': RESAMPLINGS,
      'split_by': SPLIT_BY,
      'on_bad_row': BAD_ROWS,
    }
    for field, allowed in choices.items():
      if getattr(self, field) not in allowed:
        raise CustomDataError(f'data.{field}={getattr(self, field)!r}: must be one of {allowed}')
    for field in ('time_step', 'spacing', 'max_gap'):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise CustomDataError(f'data.{field}={value!r}: must be a positive number')
    if self.resample == 'time' and self.max_gap < self.time_step:
      raise CustomDataError(
        f'data.max_gap={self.max_gap} is shorter than data.time_step={self.time_step}: every '
        'step would be a gap'
      )
    if self.split_by == 'track' and not 0 < self.test_fraction < 1:
      raise CustomDataError(f'data.test_fraction={self.test_fraction!r}: must be in (0, 1)')
    if self.split_by == 'file' and not self.test_files:
      raise CustomDataError("data.split_by='file' needs data.test_files (file names or globs)")
    if self.format == 'csv' and not self.columns:
      raise CustomDataError("data.format='csv' needs data.columns (role -> column name)")


@dataclasses.dataclass(frozen=True, eq=False)
class Recordings:
  """The user's recordings as tracks in metres.

  Attributes:
    tracks: gap-free tracks in canonical order (files in order, then ped_id, then first frame).
    track_ids: the user's id of each (source, ped_id).
    projection: the lon/lat -> metres projection, or None for data already in metres.
  """

  tracks: list[tracks_lib.Track]
  track_ids: dict[tuple[str, int], str]
  projection: geo.Projection | None


def resolve_files(pattern: str | Sequence[str]) -> list[epath.Path]:
  """The files that a path, a glob or a list of them names, sorted; each stem once."""
  patterns = [pattern] if isinstance(pattern, str) else list(pattern)
  if not patterns or not all(patterns):
    raise CustomDataError('data.files is empty: name the track files (a path or a glob)')
  files = []
  for p in patterns:
    found = sorted(glob.glob(str(epath.Path(p).expanduser())))
    if not found:
      raise CustomDataError(f'data.files: no file matches {p!r}')
    files.extend(epath.Path(f) for f in found)
  stems = collections.Counter(f.stem for f in files)
  twice = sorted(s for s, n in stems.items() if n > 1)
  if twice:
    raise CustomDataError(
      f'data.files: two files share the name {twice[0]!r}; a file name names its recording, '
      'so rename one'
    )
  return sorted(dict.fromkeys(files), key=lambda f: f.stem)


def read_raw(path: epath.Path, options: Options) -> list[readers.RawTrack]:
  """One file through its format's reader."""
  kwargs = {'on_bad_row': options.on_bad_row}
  if options.format == 'csv':
    kwargs.update(columns=dict(options.columns), delimiter=options.delimiter or None)
  elif options.format == 'geojson':
    kwargs.update(
      track_property=options.track_property or None, time_property=options.time_property or None
    )
  return readers.READERS[options.format](path, **kwargs)


def load(files: Sequence[epath.Path], options: Options) -> Recordings:
  """Reads, projects and resamples every file into tracks (steps 1-3 of the module doc)."""
  raws = {f.stem: read_raw(f, options) for f in files}
  kinds = {raw.coordinates for rs in raws.values() for raw in rs}
  if len(kinds) > 1:
    raise CustomDataError(f'the files mix coordinates {sorted(kinds)}: use one kind throughout')
  projection = None
  if kinds == {'lonlat'}:
    points = np.concatenate([raw.coords for rs in raws.values() for raw in rs])
    try:
      projection = geo.choose_projection(points, options.projection)
    except geo.ProjectionError as e:
      raise CustomDataError(f'data.files: {e}') from None
  out, track_ids = [], {}
  for source, file_raws in raws.items():
    ids = _ped_ids([raw.track_id for raw in file_raws])
    if projection is not None:
      file_raws = [
        dataclasses.replace(raw, coords=projection.forward(raw.coords), coordinates='metres')
        for raw in file_raws
      ]
    pieces = _cut(file_raws, ids, options)
    _check_no_overlap(pieces)
    out.extend(sorted(pieces, key=lambda t: (t.ped_id, t.frames[0])))
    track_ids.update({(source, ids[raw.track_id]): raw.track_id for raw in file_raws})
  return Recordings(tracks=out, track_ids=track_ids, projection=projection)


def _ped_ids(track_ids: Sequence[str]) -> dict[str, int]:
  """The user's ids as integers: themselves if all are, else positions in sorted order."""
  unique = sorted(set(track_ids))
  try:
    as_int = {t: int(t) for t in unique}
  except ValueError:
    as_int = None
  if as_int is not None and len(set(as_int.values())) == len(unique):
    return as_int
  return {t: i for i, t in enumerate(unique)}


def _cut(
  raws: Sequence[readers.RawTrack], ids: dict[str, int], options: Options
) -> list[tracks_lib.Track]:
  """One file's raw tracks -> gap-free tracks with integer frames, by `options.resample`."""
  if options.resample == 'none':
    return _as_frames(raws, ids)
  t0 = min(float(raw.times[0]) for raw in raws)
  next_frame: dict[str, int] = collections.defaultdict(int)
  out = []
  for raw in raws:
    if options.resample == 'time':
      if raw.time_unit == 'index':
        raise CustomDataError(
          f'{raw.where[0]}: track {raw.track_id!r} has no times; '
          "data.resample='time' needs them (use 'distance' or 'none')"
        )
      for times, xy in resample.by_time(raw.times, raw.coords, options.time_step, options.max_gap):
        frames = np.rint((times - t0) / options.time_step).astype(np.int64)
        out.append(_track(raw, ids, frames, xy))
    else:  # 'distance': gaps in time still cut the track.
      gap = options.max_gap if raw.time_unit != 'index' else np.inf
      for piece in resample.split_at_gaps(raw.times, gap):
        xy = resample.by_distance(raw.coords[piece], options.spacing)
        start = next_frame[raw.track_id]
        frames = start + np.arange(len(xy), dtype=np.int64)
        next_frame[raw.track_id] = int(frames[-1]) + 2  # A skipped frame marks the cut.
        out.append(_track(raw, ids, frames, xy))
  return out


def _as_frames(raws: Sequence[readers.RawTrack], ids: dict[str, int]) -> list[tracks_lib.Track]:
  """Points as they are: integer times, split where the step is not the file's usual one."""
  for raw in raws:
    if not np.all(raw.times == np.round(raw.times)):
      bad = int(np.flatnonzero(raw.times != np.round(raw.times))[0])
      raise CustomDataError(
        f'{raw.where[bad]}: time {raw.times[bad]} is not a whole frame; with irregular or '
        "fractional times set data.resample='time' (and data.time_step) or 'distance'"
      )
  steps = np.concatenate([np.diff(raw.times) for raw in raws])
  step = tracks_lib.usual_frame_step(steps.astype(np.int64))
  return [
    piece
    for raw in raws
    for piece in tracks_lib.split_at_frame_gaps(
      raw.source, ids[raw.track_id], raw.times.astype(np.int64), raw.coords, step
    )
  ]


def _track(raw: readers.RawTrack, ids: dict[str, int], frames, xy) -> tracks_lib.Track:
  return tracks_lib.Track(source=raw.source, ped_id=ids[raw.track_id], frames=frames, xy=xy)


def _check_no_overlap(pieces: Sequence[tracks_lib.Track]) -> None:
  """Two parts of one track (GPX segments, MultiLineString parts) may not share a frame."""
  seen: dict[tuple[str, int], set[int]] = collections.defaultdict(set)
  for t in pieces:
    key = (t.source, t.ped_id)
    shared = seen[key].intersection(t.frames.tolist())
    if shared:
      raise CustomDataError(
        f'{t.source}: two parts of track {t.ped_id} overlap in time (frame {min(shared)}); '
        'give them different track ids'
      )
    seen[key].update(t.frames.tolist())


def split(
  recordings: Recordings, files: Sequence[epath.Path], options: Options, seed: int
) -> dict[str, list[tracks_lib.Track]]:
  """Train and test tracks (step 4): by whole tracks (seeded) or by file."""
  if options.split_by == 'file':
    test_sources = set()
    for pattern in options.test_files:
      matched = {f.stem for f in files if f.match(pattern) or f.stem == pattern}
      if not matched:
        raise CustomDataError(f'data.test_files: {pattern!r} names none of the data files')
      test_sources |= matched
    is_test = {key: key[0] in test_sources for key in recordings.track_ids}
  else:
    keys = sorted(recordings.track_ids)
    draws = np.random.default_rng([seed, 3]).random(len(keys)) < options.test_fraction
    is_test = dict(zip(keys, draws.tolist(), strict=True))
  out = {'train': [], 'test': []}
  for t in recordings.tracks:
    out['test' if is_test[(t.source, t.ped_id)] else 'train'].append(t)
  for name, part in out.items():
    if not part:
      raise CustomDataError(
        f'the {name} split has no tracks ({len(recordings.track_ids)} tracks in all): '
        'change data.test_fraction or data.test_files'
      )
  return out
