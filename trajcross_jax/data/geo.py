"""Longitude/latitude to a local metric frame, so GPS tracks can be handled like the metre tracks.

A Projection is a named CRS as a string, so it is hashable, picklable and can be written next to
the data (to_json) to map predictions back to the globe. choose_projection centres the frame on
the data: 'local' is a transverse Mercator with scale 1 at the data's centre (the least distortion
for a city-sized area), 'utm' is the standard UTM zone of that centre (comparable across datasets).
Either way the data must fit in a region about 20 degrees across and stay away from the poles.
"""

import dataclasses
import functools
import math

import numpy as np
import pyproj

KINDS = ('local', 'utm')

# Beyond this many degrees from the centre a single local frame distorts distances noticeably.
MAX_SPREAD_DEG = 10.0
# Closer than this to a pole the longitude of a point says little and the circular mean of the
# longitudes is meaningless.
MAX_ABS_LAT_DEG = 89.0
# The centre is rounded to this many decimals (1e-6 degrees, about 0.1 m) so that the same data
# gives the same definition string on any machine despite summation order.
_CENTRE_DECIMALS = 6
_LONLAT = 'EPSG:4326'


class ProjectionError(ValueError):
  """Data or a stored projection that cannot give a sound local metric frame; says what to do."""


@dataclasses.dataclass(frozen=True)
class Projection:
  """A map from (lon, lat) degrees to local (x east, y north) metres and back.

  Attributes:
    kind: one of KINDS: 'local' (transverse Mercator centred on the data) or 'utm'.
    definition: the projected CRS as a PROJ string or an authority code such as 'EPSG:32633'.
  """

  kind: str
  definition: str

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ProjectionError(f'unknown projection kind {self.kind!r}; use one of {KINDS}')

  def forward(self, lonlat: np.ndarray) -> np.ndarray:
    """(..., 2) longitude, latitude in degrees -> (..., 2) x east, y north in metres."""
    lonlat = _pairs(lonlat, 'lonlat')
    x, y = _transformers(self.definition)[0].transform(lonlat[..., 0], lonlat[..., 1])
    return np.stack([x, y], axis=-1)

  def inverse(self, xy: np.ndarray) -> np.ndarray:
    """(..., 2) x, y in metres -> (..., 2) longitude in [-180, 180], latitude in degrees."""
    xy = _pairs(xy, 'xy')
    lon, lat = _transformers(self.definition)[1].transform(xy[..., 0], xy[..., 1])
    return np.stack([_wrap_lon(np.asarray(lon)), lat], axis=-1)

  def to_json(self) -> dict:
    """A JSON-ready dict that from_json turns back into an equal Projection."""
    return {'kind': self.kind, 'definition': self.definition}

  @classmethod
  def from_json(cls, d: dict) -> 'Projection':
    """The Projection that to_json wrote; ProjectionError if `d` is not such a dict."""
    if not isinstance(d, dict) or set(d) != {'kind', 'definition'}:
      raise ProjectionError(
        f'a stored projection must be a dict with keys kind and definition, got {d!r}; '
        'write it with Projection.to_json'
      )
    if not isinstance(d['definition'], str):
      raise ProjectionError(f'projection definition must be a string, got {d["definition"]!r}')
    projection = cls(kind=d['kind'], definition=d['definition'])
    try:
      _transformers(projection.definition)
    except pyproj.exceptions.CRSError as e:
      raise ProjectionError(
        f'stored projection definition {projection.definition!r} is not a CRS PROJ knows: {e}'
      ) from e
    return projection


def choose_projection(lonlat: np.ndarray, kind: str = 'local') -> Projection:
  """The projection of `kind` centred on the data.

  The centre is the circular mean of the longitudes (so a track crossing the antimeridian gets a
  centre near 180, not 0) and the mean latitude, rounded to 1e-6 degrees.

  Args:
    lonlat: (..., 2) longitude, latitude in degrees, e.g. every point of a recording.
    kind: 'local' for a transverse Mercator at the centre, 'utm' for the centre's UTM zone.

  Returns:
    The projection; the same data always gives the same definition string.

  Raises:
    ProjectionError: unknown kind; no points; a NaN or infinity; a latitude outside [-90, 90] or
      a longitude outside [-180, 180]; points within 1 degree of a pole; or points more than
      10 degrees in longitude or latitude from the centre.
  """
  if kind not in KINDS:
    raise ProjectionError(f'unknown projection kind {kind!r}; use one of {KINDS}')
  points = _pairs(lonlat, 'lonlat').reshape(-1, 2)
  if not len(points):
    raise ProjectionError('no points to centre a projection on; pass at least one (lon, lat)')
  if not np.isfinite(points).all():
    raise ProjectionError('lon/lat contains NaN or infinity; drop or fix those points first')
  lon, lat = points[:, 0], points[:, 1]
  if np.abs(lat).max() > 90:
    raise ProjectionError(
      f'latitude {_extent(lat)} is outside [-90, 90]; are the columns (lon, lat), in degrees?'
    )
  if np.abs(lon).max() > 180:
    raise ProjectionError(
      f'longitude {_extent(lon)} is outside [-180, 180]; wrap longitudes into [-180, 180] first'
    )
  if np.abs(lat).max() > MAX_ABS_LAT_DEG:
    raise ProjectionError(
      f'latitude {_extent(lat)} comes within {90 - MAX_ABS_LAT_DEG:g} degree of a pole, where '
      'a local frame centred by longitude is unsound; use a polar projection for such data'
    )

  # Circular mean: the mean of unit vectors, so 179.9 and -179.9 average to 180, not 0.
  radians = np.radians(lon)
  lon_0 = math.degrees(math.atan2(np.sin(radians).mean(), np.cos(radians).mean()))
  lat_0 = float(lat.mean())
  lon_offsets = _wrap_lon(lon - lon_0)
  if np.abs(lon_offsets).max() > MAX_SPREAD_DEG or np.abs(lat - lat_0).max() > MAX_SPREAD_DEG:
    raise ProjectionError(
      f'points span longitude {_extent(lon)} and latitude {_extent(lat)}, more than '
      f'{MAX_SPREAD_DEG:g} degrees from their centre ({lon_0:.3f}, {lat_0:.3f}); one local frame '
      'would distort distances there: split the data by region and project each part separately'
    )

  lon_0, lat_0 = _round_centre(lon_0), _round_centre(lat_0)
  if kind == 'local':
    return Projection(
      kind='local',
      definition=(
        f'+proj=tmerc +lat_0={lat_0:.{_CENTRE_DECIMALS}f} +lon_0={lon_0:.{_CENTRE_DECIMALS}f} '
        '+k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs'
      ),
    )
  # The plain zone formula: the Norway and Svalbard exceptions would only change which of two
  # adjacent zones is used, and the data is checked to be near the centre anyway.
  zone = min(int((lon_0 + 180) // 6) + 1, 60)
  return Projection(kind='utm', definition=f'EPSG:{(32700 if lat_0 < 0 else 32600) + zone}')


def box_to_lonlat(projection: Projection, box: np.ndarray) -> np.ndarray:
  """Maps boxes' corners from metres to degrees.

  Args:
    projection: the frame the boxes are in.
    box: (..., 4) [x_left, y_top, x_right, y_bottom] in metres.

  Returns:
    (..., 4) [lon_left, lat_top, lon_right, lat_bottom]: the top-left and bottom-right corners
    mapped one by one. (The other two corners of a projected box are not exactly on those
    meridians and parallels; at the scale of a local frame the difference is negligible.)
  """
  box = np.asarray(box, dtype=np.float64)
  if box.ndim < 1 or box.shape[-1] != 4:
    raise ValueError(
      f'box must have shape (..., 4) [x_left, y_top, x_right, y_bottom], got {box.shape}'
    )
  top_left = projection.inverse(box[..., 0:2])
  bottom_right = projection.inverse(box[..., 2:4])
  return np.concatenate([top_left, bottom_right], axis=-1)


@functools.lru_cache(maxsize=64)
def _transformers(definition: str) -> tuple[pyproj.Transformer, pyproj.Transformer]:
  """(lon/lat -> metres, metres -> lon/lat) for a definition; cached since building one is slow."""
  forward = pyproj.Transformer.from_crs(_LONLAT, definition, always_xy=True)
  inverse = pyproj.Transformer.from_crs(definition, _LONLAT, always_xy=True)
  return forward, inverse


def _pairs(values: np.ndarray, name: str) -> np.ndarray:
  """`values` as float64 with a last axis of 2; ValueError otherwise."""
  values = np.asarray(values, dtype=np.float64)
  if values.ndim < 1 or values.shape[-1] != 2:
    raise ValueError(f'{name} must have shape (..., 2), got {values.shape}')
  return values


def _wrap_lon(lon: np.ndarray) -> np.ndarray:
  """Longitudes wrapped into [-180, 180), keeping 180 itself (PROJ may return either end)."""
  wrapped = (lon + 180.0) % 360.0 - 180.0
  return np.where(lon == 180.0, 180.0, wrapped)


def _round_centre(degrees: float) -> float:
  """Rounded to _CENTRE_DECIMALS, with -0 and -180 normalised so the string is canonical."""
  degrees = round(degrees, _CENTRE_DECIMALS) + 0.0
  return 180.0 if degrees == -180.0 else degrees


def _extent(values: np.ndarray) -> str:
  return f'[{values.min():.6g}, {values.max():.6g}]'
