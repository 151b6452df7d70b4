"""Reading raw tracks from the formats people record them in: text, CSV, GeoJSON and GPX.

Every reader returns `RawTrack`s: one track id's points with their times and coordinates as the
file gives them (metres or lon/lat degrees; frames, seconds or just the point order). Turning them
into gap-free metric tracks is the caller's job; the readers only check that each point is
well-formed and say exactly where a bad one is (`{path}:{line}` or `{path}: feature 3, point 7`).

`on_bad_row='skip'` drops a bad row (a whole feature for GeoJSON, a point for GPX) instead of
raising, and logs one warning with the reasons counted, so nothing is dropped silently. Errors
about the file as a whole (missing, unparseable, a bad header, nothing left) always raise.
"""

import collections
import csv
import dataclasses
import datetime
import io
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence

import gpxpy
import gpxpy.gpx
import numpy as np
from absl import logging
from etils import epath

TIME_UNITS = ('frame', 'second', 'index')
COORDINATES = ('metres', 'lonlat')
ON_BAD_ROW = ('error', 'skip')

_TEXT_COLUMNS = ('frame', 'ped', 'x', 'y')
_CSV_ROLES = ('track', 'frame', 'time', 'x', 'y', 'lon', 'lat')
_SNIFF_DELIMITERS = ',;\t|'
_SNIFF_LINES = 50  # Enough rows for csv.Sniffer to see a consistent count, cheap on big files.
_INTEGER = re.compile(r'[+-]?\d+')


class TrackFileError(ValueError):
  """A track file is missing, empty or malformed; the message names the file and line (or feature
  or point) and what is wrong."""


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value.
class RawTrack:
  """One track's points as a file records them.

  Attributes:
    source: the file's stem (or the name the caller gave).
    track_id: the file's track id as text (ped id, GeoJSON property, GPX track name...).
    times: float64 (n,) in `time_unit`, in the order the reader documents.
    coords: float64 (n, 2): (x, y) metres or (lon, lat) degrees, per `coordinates`.
    time_unit: one of TIME_UNITS: frame numbers, seconds (since the Unix epoch for timestamps),
      or 'index' when the file has no times (then times are 0, 1, 2, ...).
    coordinates: one of COORDINATES.
    where: (n,) where each point is in the file, for the caller's error messages.
  """

  source: str
  track_id: str
  times: np.ndarray
  coords: np.ndarray
  time_unit: str
  coordinates: str
  where: tuple[str, ...]

  def __post_init__(self):
    # Cheap checks that catch a reader (or a hand-built test track) mixing up its arrays.
    if self.time_unit not in TIME_UNITS:
      raise ValueError(f'time_unit {self.time_unit!r} is not one of {TIME_UNITS}')
    if self.coordinates not in COORDINATES:
      raise ValueError(f'coordinates {self.coordinates!r} is not one of {COORDINATES}')
    n = len(self.times)
    if self.times.shape != (n,) or self.coords.shape != (n, 2) or len(self.where) != n:
      raise ValueError(
        f'inconsistent shapes: times {self.times.shape}, coords {self.coords.shape}, '
        f'where {len(self.where)}'
      )

  def __len__(self) -> int:
    return len(self.times)


class _BadRow(Exception):
  """A row, point or feature that 'skip' may drop.

  `detail` completes the error message; `reason` is its value-free gist, counted under 'skip';
  `where` overrides the caller's location when the problem is deeper (a point of a feature).
  """

  def __init__(self, detail: str, reason: str | None = None, where: str | None = None):
    super().__init__(detail)
    self.detail = detail
    self.reason = reason or detail
    self.where = where


class _BadRows:
  """Raises at the first bad row ('error') or drops and counts them ('skip')."""

  def __init__(self, path: epath.PathLike, on_bad_row: str, noun: str):
    if on_bad_row not in ON_BAD_ROW:
      raise ValueError(f'on_bad_row must be one of {ON_BAD_ROW}, got {on_bad_row!r}')
    self.path = path
    self.skip = on_bad_row == 'skip'
    self.noun = noun
    self.reasons: collections.Counter[str] = collections.Counter()

  def handle(self, where: str, error: _BadRow) -> None:
    """Raises TrackFileError for `error` at `where`, or counts it under 'skip'."""
    if not self.skip:
      raise TrackFileError(f'{error.where or where}: {error.detail}') from None
    self.reasons[error.reason] += 1

  def finish(self, kept: int, nothing: str) -> None:
    """Logs what was skipped; raises if nothing is left (`nothing` says so for an empty file)."""
    skipped = sum(self.reasons.values())
    if skipped:
      noun = self.noun if skipped != 1 else self.noun[:-1]
      reasons = ', '.join(f'{count} x {reason!r}' for reason, count in self.reasons.most_common())
      logging.warning('%s: skipped %d %s: %s', self.path, skipped, noun, reasons)
    if not kept:
      if skipped:
        raise TrackFileError(f'{self.path}: no {self.noun} left after skipping {skipped} bad ones')
      raise TrackFileError(f'{self.path}: {nothing}')


def read_text(
  path: epath.PathLike, source: str | None = None, on_bad_row: str = 'error'
) -> list[RawTrack]:
  """Reads a `frame ped x y` file (tab- or space-separated, blank lines ignored).

  Args:
    path: the file.
    source: the name for every track; defaults to the file's stem.
    on_bad_row: 'error' raises at the first bad row; 'skip' drops bad rows (a repeated (frame,
      ped) keeps its first row) and logs one warning with the count.

  Returns:
    One track per ped id, ped ids ascending (track_id is the id as an integer, in text), points
    sorted by frame; time_unit 'frame', coordinates 'metres'. Gaps are not split here.

  Raises:
    TrackFileError: the file is missing, unreadable or has no rows, or a row has the wrong number
      of columns, a non-number, a NaN or infinity, a non-integer frame or ped id, or repeats a
      (frame, ped) (the message names both lines).
  """
  bad = _BadRows(path, on_bad_row, 'rows')
  path = epath.Path(path)
  line_numbers, rows = [], []
  for line_number, line in enumerate(_read_file(path).splitlines(), start=1):
    fields = line.split()
    if not fields:
      continue
    try:
      rows.append(_text_row(fields))
    except _BadRow as e:
      bad.handle(f'{path}:{line_number}', e)
      continue
    line_numbers.append(line_number)
  if not rows:
    bad.finish(0, 'the file has no rows')

  table = np.asarray(rows, dtype=np.float64)
  frames, peds, lines = table[:, 0], table[:, 1], np.asarray(line_numbers)
  # Sort by (ped, frame), keeping file order among equal keys so duplicates report in order.
  order = np.lexsort((frames, peds))
  keep = np.ones(len(order), dtype=bool)
  for i, first in _repeats(peds[order], frames[order]):
    error = _BadRow(
      f'duplicate row for frame {int(frames[order[i]])}, ped {int(peds[order[i]])} '
      f'(first at line {lines[order[first]]})',
      'duplicate (frame, ped)',
    )
    bad.handle(f'{path}:{lines[order[i]]}', error)
    keep[i] = False
  order = order[keep]
  bad.finish(len(order), 'the file has no rows')

  where = [f'{path}:{n}' for n in lines[order]]
  return [
    _raw_track(
      source or path.stem,
      str(int(peds[order[a]])),
      frames[order[a:b]],
      table[order[a:b], 2:],
      'frame',
      'metres',
      where[a:b],
    )
    for a, b in _runs(peds[order])
  ]


def read_csv(
  path: epath.PathLike,
  columns: Mapping[str, str],
  delimiter: str | None = None,
  source: str | None = None,
  on_bad_row: str = 'error',
) -> list[RawTrack]:
  """Reads a CSV file with a header row.

  Args:
    path: the file.
    columns: role -> header name. 'track' is required; exactly one of 'frame' (integers) or
      'time' (seconds, or ISO 8601 timestamps, naive ones taken as UTC); and either 'x' and 'y'
      (metres) or 'lon' and 'lat' (degrees). Other header columns are ignored.
    delimiter: the field separator; None guesses it among ',;\\t|' with csv.Sniffer.
    source: the name for every track; defaults to the file's stem.
    on_bad_row: 'error' raises at the first bad row; 'skip' drops bad rows (a repeated time keeps
      its first row) and logs one warning with the count.

  Returns:
    One track per track id, ordered by id (numerically if every id is an integer), points sorted
    by time; time_unit 'frame' or 'second' (since the Unix epoch for timestamps), coordinates
    'metres' or 'lonlat'.

  Raises:
    TrackFileError: the file is missing, unreadable or has no rows; the delimiter cannot be told;
      `columns` lacks a role or names a column not in the header; or a row has the wrong number of
      fields, an empty field, a non-number, a NaN or infinity, a non-integer frame, a lon/lat out
      of range, or repeats a time within its track (the message names both lines).
    ValueError: `delimiter` is not one character or `on_bad_row` is unknown.
  """
  bad = _BadRows(path, on_bad_row, 'rows')
  if delimiter is not None and len(delimiter) != 1:
    raise ValueError(f'delimiter must be one character, got {delimiter!r}')
  path = epath.Path(path)
  text = _read_file(path).lstrip('\ufeff')  # Spreadsheets often start UTF-8 CSVs with a BOM.
  if not text.strip():
    raise TrackFileError(f'{path}: the file has no rows')
  reader = csv.reader(io.StringIO(text), delimiter=delimiter or _sniff_delimiter(path, text))
  records = _csv_records(path, reader)
  first = next(records, None)
  if first is None:
    raise TrackFileError(f'{path}: the file has no rows')
  header = [name.strip() for name in first[1]]
  roles = _csv_roles(path, columns, header)
  time_role = 'frame' if 'frame' in roles else 'time'
  space = ('x', 'y') if 'x' in roles else ('lon', 'lat')

  ids, times, time_texts, coords, line_numbers = [], [], [], [], []
  for line_number, row in records:
    try:
      track_id, time, xy = _csv_row(row, header, roles, time_role, space)
    except _BadRow as e:
      bad.handle(f'{path}:{line_number}', e)
      continue
    ids.append(track_id)
    times.append(time)
    time_texts.append(row[roles[time_role]].strip())
    coords.append(xy)
    line_numbers.append(line_number)
  if not ids:
    bad.finish(0, 'the file has no rows')

  rank = {track_id: r for r, track_id in enumerate(sorted(set(ids), key=_id_order(ids)))}
  keys = np.array([rank[track_id] for track_id in ids])
  times = np.asarray(times, dtype=np.float64)
  order = np.lexsort((times, keys))  # Stable: equal times keep file order.
  keep = np.ones(len(order), dtype=bool)
  for i, first in _repeats(keys[order], times[order]):
    row, first_row = order[i], order[first]
    error = _BadRow(
      f'duplicate {columns[time_role]} {time_texts[row]!r} in track {ids[row]!r} '
      f'(first at line {line_numbers[first_row]})',
      f'duplicate {columns[time_role]}',
    )
    bad.handle(f'{path}:{line_numbers[row]}', error)
    keep[i] = False
  order = order[keep]
  bad.finish(len(order), 'the file has no rows')

  coords = np.asarray(coords, dtype=np.float64)
  where = [f'{path}:{line_numbers[row]}' for row in order]
  unit = 'frame' if time_role == 'frame' else 'second'
  coordinates = 'metres' if space == ('x', 'y') else 'lonlat'
  return [
    _raw_track(
      source or path.stem,
      ids[order[a]],
      times[order[a:b]],
      coords[order[a:b]],
      unit,
      coordinates,
      where[a:b],
    )
    for a, b in _runs(keys[order])
  ]


def read_geojson(
  path: epath.PathLike,
  track_property: str | None = None,
  time_property: str | None = None,
  source: str | None = None,
  on_bad_row: str = 'error',
) -> list[RawTrack]:
  """Reads a GeoJSON FeatureCollection (or one Feature) of LineStrings and MultiLineStrings.

  Args:
    path: the file.
    track_property: the feature property holding the track id; None uses the feature's index.
    time_property: the feature property holding one time per point (a list of lists for a
      MultiLineString): seconds, or ISO 8601 timestamps (naive ones taken as UTC). None gives
      time_unit 'index'.
    source: the name for every track; defaults to the file's stem.
    on_bad_row: 'error' raises at the first bad feature; 'skip' drops bad features and logs one
      warning with the count.

  Returns:
    One track per LineString and per part of a MultiLineString (parts share the feature's track
    id and are never joined), in file order; points in file order, (lon, lat) (any altitude is
    dropped); time_unit 'second' or 'index', coordinates 'lonlat'.

  Raises:
    TrackFileError: the file is missing, unreadable, not JSON, not a FeatureCollection or Feature,
      or has no features; or a feature has a null geometry or one that is not a (Multi)LineString,
      lacks `track_property` or `time_property`, has a line with no points, a coordinate that is
      not 2-3 finite numbers or out of lon/lat range, times that do not match its points in
      number, or times that are not strictly increasing.
  """
  bad = _BadRows(path, on_bad_row, 'features')
  path = epath.Path(path)
  text = _read_file(path)
  if not text.strip():
    raise TrackFileError(f'{path}: the file has no features')
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise TrackFileError(f'{path}:{e.lineno}: not JSON: {e.msg} (column {e.colno})') from e
  features = _geojson_features(path, data)

  tracks = []
  for i, feature in enumerate(features):
    here = f'{path}: feature {i}'
    try:
      parts = _feature_parts(feature, str(i), here, track_property, time_property)
    except _BadRow as e:
      bad.handle(here, e)
      continue
    tracks.extend(
      _raw_track(source or path.stem, track_id, times, coords, unit, 'lonlat', where)
      for track_id, times, coords, unit, where in parts
    )
  bad.finish(len(tracks), 'the file has no features')
  return tracks


def read_gpx(
  path: epath.PathLike, source: str | None = None, on_bad_row: str = 'error'
) -> list[RawTrack]:
  """Reads the track points of a GPX file (routes and waypoints are ignored).

  Args:
    path: the file.
    source: the name for every track; defaults to the file's stem.
    on_bad_row: 'error' raises at the first bad point; 'skip' drops bad points and logs one
      warning with the count.

  Returns:
    One track per track segment, in file order, track_id the track's name (else f'track{i}');
    points in file order as (lon, lat); time_unit 'second' (since the Unix epoch; naive times
    taken as UTC) when every point of the segment has a time, 'index' when none has. Segments
    with no points are left out.

  Raises:
    TrackFileError: the file is missing, unreadable, not GPX or has no track points; or a point
      has a NaN or out-of-range lon/lat, lacks a time while others in its segment have one, or
      has a time not after the previous point's.
  """
  bad = _BadRows(path, on_bad_row, 'points')
  path = epath.Path(path)
  text = _read_file(path)
  if not text.strip():
    raise TrackFileError(f'{path}: the file has no tracks')
  try:
    gpx = gpxpy.parse(text)
  except (gpxpy.gpx.GPXException, ET.ParseError) as e:
    raise TrackFileError(f'{path}: not a readable GPX file: {_one_line(e)}') from e
  if not any(segment.points for track in gpx.tracks for segment in track.segments):
    raise TrackFileError(f'{path}: the file has no track points')

  tracks = []
  for i, track in enumerate(gpx.tracks):
    name = f'track {i} ({track.name})' if track.name else f'track {i}'
    for s, segment in enumerate(track.segments):
      if not segment.points:
        continue
      times, coords, unit, where = _gpx_segment(segment.points, f'{path}: {name}, segment {s}', bad)
      if times:
        track_id = track.name or f'track{i}'
        tracks.append(
          _raw_track(source or path.stem, track_id, times, coords, unit, 'lonlat', where)
        )
  bad.finish(len(tracks), 'the file has no track points')
  return tracks


READERS: dict[str, Callable[..., list[RawTrack]]] = {
  'tracks': read_text,
  'csv': read_csv,
  'geojson': read_geojson,
  'gpx': read_gpx,
}


def _read_file(path: epath.Path) -> str:
  """The file's text; TrackFileError if it is missing or unreadable."""
  try:
    return path.read_text()
  except FileNotFoundError as e:
    raise TrackFileError(f'{path}: no such track file') from e
  except (OSError, UnicodeDecodeError) as e:
    raise TrackFileError(f'{path}: cannot read the track file: {_one_line(e)}') from e


def _one_line(error: Exception) -> str:
  """The error's message on one line (XML and OS errors can span several)."""
  return ' '.join(str(error).split())


def _raw_track(
  source: str,
  track_id: str,
  times: Sequence[float] | np.ndarray,
  coords: Sequence[Sequence[float]] | np.ndarray,
  time_unit: str,
  coordinates: str,
  where: Sequence[str],
) -> RawTrack:
  """A RawTrack with float64 arrays of the documented shapes."""
  return RawTrack(
    source=source,
    track_id=track_id,
    times=np.asarray(times, dtype=np.float64).reshape(-1),
    coords=np.asarray(coords, dtype=np.float64).reshape(-1, 2),
    time_unit=time_unit,
    coordinates=coordinates,
    where=tuple(where),
  )


def _repeats(keys: np.ndarray, times: np.ndarray) -> list[tuple[int, int]]:
  """(position, position of the first) for each point repeating an earlier point's (key, time).

  The arrays must be sorted by (key, time); positions index them.
  """
  same = (keys[1:] == keys[:-1]) & (times[1:] == times[:-1])
  starts = np.where(np.concatenate([[True], ~same]), np.arange(len(keys)), 0)
  firsts = np.maximum.accumulate(starts)
  return [(int(i), int(firsts[i])) for i in np.flatnonzero(same) + 1]


def _runs(keys: np.ndarray) -> list[tuple[int, int]]:
  """(start, stop) of each run of equal keys in a sorted, non-empty array."""
  starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
  bounds = [0, *starts.tolist(), len(keys)]
  return list(zip(bounds[:-1], bounds[1:], strict=True))


def _number(name: str, field: str) -> float:
  """A finite float from a text field."""
  try:
    value = float(field)
  except ValueError:
    raise _BadRow(f'{name} {field!r} is not a number', f'{name} is not a number') from None
  if not math.isfinite(value):
    raise _BadRow(f'{name} is {field!r}, not a finite number', f'{name} is not finite')
  return value


def _integer(name: str, field: str) -> float:
  """A finite, whole float from a text field (kept float: RawTrack times are float64)."""
  value = _number(name, field)
  if value != int(value):
    raise _BadRow(f'{name} {field!r} is not an integer', f'{name} is not an integer')
  return value


def _seconds(name: str, value: object) -> float:
  """Seconds from a number (or numeric text) or an ISO 8601 timestamp (naive = UTC)."""
  if isinstance(value, str):
    try:
      number = float(value)
    except ValueError:
      return _iso_seconds(name, value)
  elif isinstance(value, int | float) and not isinstance(value, bool):
    try:
      number = float(value)
    except OverflowError:  # A JSON integer too big for a float.
      number = math.inf
  else:
    raise _BadRow(f'{name} {value!r} is not a number or an ISO 8601 time', f'{name} is not a time')
  if not math.isfinite(number):
    raise _BadRow(f'{name} is {value!r}, not a finite number', f'{name} is not finite')
  return number


def _iso_seconds(name: str, text: str) -> float:
  """Seconds since the Unix epoch of an ISO 8601 timestamp (naive = UTC)."""
  try:
    moment = datetime.datetime.fromisoformat(text.strip())
  except ValueError:
    raise _BadRow(
      f'{name} {text!r} is neither a number nor an ISO 8601 time', f'{name} is not a time'
    ) from None
  return _epoch_seconds(moment)


def _epoch_seconds(moment: datetime.datetime) -> float:
  """Seconds since the Unix epoch; a naive time is taken as UTC (GPS logs and most exports are
  UTC, and the machine's local zone says nothing about where the track was recorded)."""
  if moment.tzinfo is None:
    moment = moment.replace(tzinfo=datetime.UTC)
  return moment.timestamp()


def _check_lonlat(lon_name: str, lon: float, lat_name: str, lat: float) -> None:
  """Raises _BadRow if lon is outside [-180, 180] or lat outside [-90, 90]."""
  if not -180 <= lon <= 180:
    raise _BadRow(f'{lon_name} {lon:g} is outside [-180, 180]', f'{lon_name} out of range')
  if not -90 <= lat <= 90:
    raise _BadRow(f'{lat_name} {lat:g} is outside [-90, 90]', f'{lat_name} out of range')


def _text_row(fields: list[str]) -> list[float]:
  """frame, ped, x, y of one split `frame ped x y` line."""
  if len(fields) != len(_TEXT_COLUMNS):
    raise _BadRow(
      f'expected {len(_TEXT_COLUMNS)} columns (frame ped x y), got {len(fields)}',
      f'expected {len(_TEXT_COLUMNS)} columns',
    )
  return [
    _integer(name, field) if name in ('frame', 'ped') else _number(name, field)
    for name, field in zip(_TEXT_COLUMNS, fields, strict=True)
  ]


def _sniff_delimiter(path: epath.Path, text: str) -> str:
  """The delimiter among ',;\\t|' that csv.Sniffer finds in the file's first lines."""
  lines = [line for line in text.splitlines() if line.strip()][:_SNIFF_LINES]
  try:
    return csv.Sniffer().sniff('\n'.join(lines), delimiters=_SNIFF_DELIMITERS).delimiter
  except csv.Error:
    pass
  # The Sniffer wants >= 90% of lines to agree, so a few bad rows defeat it; the header row is
  # still a safe guide when exactly one candidate appears in it.
  in_header = [d for d in _SNIFF_DELIMITERS if d in lines[0]]
  if len(in_header) == 1:
    return in_header[0]
  raise TrackFileError(
    f"{path}: cannot tell the delimiter (tried ',', ';', tab, '|'); pass delimiter="
  )


def _csv_records(path: epath.Path, reader) -> Iterator[tuple[int, list[str]]]:
  """(line number, fields) of each record that is not blank; csv.Error -> TrackFileError."""
  try:
    for row in reader:
      if any(field.strip() for field in row):
        yield reader.line_num, row  # line_num: the record's last line, read so far.
  except csv.Error as e:
    raise TrackFileError(f'{path}:{reader.line_num}: {_one_line(e)}') from e


def _csv_roles(path: epath.Path, columns: Mapping[str, str], header: list[str]) -> dict[str, int]:
  """role -> column index for the roles in `columns`, checked against the rules and header."""
  found = f'(header: {", ".join(repr(name) for name in header)})'
  unknown = sorted(set(columns) - set(_CSV_ROLES))
  if unknown:
    raise TrackFileError(f'{path}: unknown column roles {unknown}; roles are {_CSV_ROLES} {found}')
  if 'track' not in columns:
    raise TrackFileError(f"{path}: columns needs a 'track' role {found}")
  if ('frame' in columns) == ('time' in columns):
    raise TrackFileError(f"{path}: columns needs exactly one of 'frame' or 'time' {found}")
  has_xy, has_lonlat = ('x' in columns, 'y' in columns), ('lon' in columns, 'lat' in columns)
  if not (has_xy == (True, True) and has_lonlat == (False, False)) and not (
    has_xy == (False, False) and has_lonlat == (True, True)
  ):
    raise TrackFileError(f"{path}: columns needs both 'x' and 'y' or both 'lon' and 'lat' {found}")
  roles = {}
  for role, name in columns.items():
    if name not in header:
      raise TrackFileError(f'{path}: the {role} column {name!r} is not in the header {found}')
    if header.count(name) > 1:
      raise TrackFileError(f'{path}: the {role} column {name!r} is in the header twice {found}')
    roles[role] = header.index(name)
  return roles


def _csv_row(
  row: list[str],
  header: list[str],
  roles: Mapping[str, int],
  time_role: str,
  space: tuple[str, str],
) -> tuple[str, float, tuple[float, float]]:
  """(track id, time, (x, y) or (lon, lat)) of one CSV record."""
  if len(row) != len(header):
    raise _BadRow(
      f'expected {len(header)} fields as in the header, got {len(row)}', 'wrong number of fields'
    )
  fields = {}
  for role in ('track', time_role, *space):
    name, field = header[roles[role]], row[roles[role]].strip()
    if not field:
      raise _BadRow(f'{name} is empty')
    fields[role] = (name, field)
  time = (_integer if time_role == 'frame' else _seconds)(*fields[time_role])
  first, second = (_number(*fields[role]) for role in space)
  if space == ('lon', 'lat'):
    _check_lonlat(fields['lon'][0], first, fields['lat'][0], second)
  return fields['track'][1], time, (first, second)


def _id_order(ids: Sequence[str]) -> Callable[[str], object]:
  """A sort key for track ids: numeric if every id is an integer, else the text."""
  if all(_INTEGER.fullmatch(track_id) for track_id in ids):
    return lambda track_id: (int(track_id), track_id)  # The text breaks ties like '7' vs '07'.
  return lambda track_id: track_id


def _geojson_features(path: epath.Path, data: object) -> list[object]:
  """The features of a FeatureCollection, or [the Feature]; TrackFileError otherwise."""
  kind = data.get('type') if isinstance(data, dict) else type(data).__name__
  if kind == 'Feature':
    return [data]
  if kind != 'FeatureCollection':
    raise TrackFileError(f'{path}: not a GeoJSON FeatureCollection or Feature (type {kind!r})')
  features = data.get('features')
  if not isinstance(features, list):
    raise TrackFileError(f"{path}: the FeatureCollection's 'features' is not a list")
  if not features:
    raise TrackFileError(f'{path}: the file has no features')
  return features


_Part = tuple[str, list[float], list[tuple[float, float]], str, list[str]]


def _feature_parts(
  feature: object,
  index: str,
  here: str,
  track_property: str | None,
  time_property: str | None,
) -> list[_Part]:
  """(track id, times, coords, time unit, where) of each line of one GeoJSON feature.

  `index` is the track id without `track_property`; `here` names the feature in messages.
  """
  if not isinstance(feature, dict) or feature.get('type') != 'Feature':
    raise _BadRow('is not a GeoJSON Feature', 'not a Feature')
  properties = feature.get('properties') or {}
  if not isinstance(properties, dict):
    raise _BadRow('properties is not an object', 'properties not an object')
  geometry = feature.get('geometry')
  if geometry is None:
    raise _BadRow('has a null geometry', 'null geometry')
  kind = geometry.get('type') if isinstance(geometry, dict) else None
  if kind not in ('LineString', 'MultiLineString'):
    raise _BadRow(
      f'geometry type {kind!r} is not LineString or MultiLineString', f'{kind} geometry'
    )
  multi = kind == 'MultiLineString'
  lines = geometry.get('coordinates')
  if not isinstance(lines, list) or (multi and not all(isinstance(ln, list) for ln in lines)):
    raise _BadRow(f'{kind} coordinates are not a list of positions', 'bad coordinates')
  lines = lines if multi else [lines]
  if not lines:
    raise _BadRow('MultiLineString has no lines', 'no points')

  if track_property is None:
    track_id = index
  elif track_property in properties:
    track_id = str(properties[track_property])
  else:
    raise _BadRow(f'has no property {track_property!r}', f'no property {track_property!r}')
  line_times = _feature_times(properties, time_property, lines, multi)

  parts = []
  for p, (line, times) in enumerate(zip(lines, line_times, strict=True)):
    prefix = f'{here}, part {p}' if multi else here
    if not line:
      raise _BadRow('has no points', 'no points', where=prefix)
    coords, seconds = [], []
    for j, position in enumerate(line):
      try:
        coords.append(_lonlat(position))
        if times is not None:
          seconds.append(_seconds(time_property, times[j]))
          if j and seconds[-1] <= seconds[-2]:
            raise _BadRow(
              f"{time_property} {times[j]!r} is not after the previous point's {times[j - 1]!r}",
              'times not increasing',
            )
      except _BadRow as e:
        e.where = f'{prefix}, point {j}'
        raise
    where = [f'{prefix}, point {j}' for j in range(len(line))]
    if times is None:
      parts.append((track_id, list(range(len(line))), coords, 'index', where))
    else:
      parts.append((track_id, seconds, coords, 'second', where))
  return parts


def _feature_times(
  properties: Mapping[str, object], time_property: str | None, lines: list[list], multi: bool
) -> list[list | None]:
  """Each line's raw time values from `time_property` (None for each line when not given)."""
  if time_property is None:
    return [None] * len(lines)
  if time_property not in properties:
    raise _BadRow(f'has no property {time_property!r}', f'no property {time_property!r}')
  values = properties[time_property]
  per_line = values if multi else [values]
  shape = 'a list of lists' if multi else 'a list'
  if not isinstance(values, list) or not all(isinstance(v, list) for v in per_line):
    raise _BadRow(f'{time_property} is not {shape}', f'{time_property} is not {shape}')
  if len(per_line) != len(lines):
    raise _BadRow(
      f'{time_property} has {len(per_line)} lists for {len(lines)} lines',
      f'{time_property} does not match the points',
    )
  for p, (times, line) in enumerate(zip(per_line, lines, strict=True)):
    if len(times) != len(line):
      part = f'part {p}: ' if multi else ''
      raise _BadRow(
        f'{part}{time_property} has {len(times)} values for {len(line)} points',
        f'{time_property} does not match the points',
      )
  return per_line


def _lonlat(position: object) -> tuple[float, float]:
  """(lon, lat) of a GeoJSON position [lon, lat] or [lon, lat, alt]."""
  if (
    not isinstance(position, list)
    or not 2 <= len(position) <= 3
    or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in position)
  ):
    raise _BadRow(f'coordinate {position!r} is not 2 or 3 numbers', 'coordinate not 2-3 numbers')
  lon, lat = float(position[0]), float(position[1])
  if not (math.isfinite(lon) and math.isfinite(lat)):
    raise _BadRow(f'coordinate {position!r} is not finite', 'coordinate not finite')
  _check_lonlat('lon', lon, 'lat', lat)
  return lon, lat


def _gpx_segment(
  points: list[gpxpy.gpx.GPXTrackPoint], here: str, bad: _BadRows
) -> tuple[list[float], list[tuple[float, float]], str, list[str]]:
  """(times, coords, time unit, where) of a segment's good points; bad ones go to `bad`."""
  timed = any(point.time is not None for point in points)
  times, coords, where, previous = [], [], [], None
  for j, point in enumerate(points):
    location = f'{here}, point {j}'
    try:
      lon, lat = float(point.longitude), float(point.latitude)
      if not (math.isfinite(lon) and math.isfinite(lat)):
        raise _BadRow(f'lon {lon:g}, lat {lat:g} is not finite', 'coordinate not finite')
      _check_lonlat('lon', lon, 'lat', lat)
      if timed:
        if point.time is None:
          raise _BadRow('has no time, but other points of the segment do', 'missing time')
        seconds = _epoch_seconds(point.time)
        if times and seconds <= times[-1]:
          raise _BadRow(
            f"time {point.time.isoformat()} is not after the previous point's "
            f'{previous.isoformat()}',
            'time not increasing',
          )
        previous = point.time
    except _BadRow as e:
      bad.handle(location, e)
      continue
    times.append(seconds if timed else float(len(times)))  # 'index': position among kept points.
    coords.append((lon, lat))
    where.append(location)
  return times, coords, 'second' if timed else 'index', where
