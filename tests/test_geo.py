"""Tests for trajcross_jax.data.geo: lon/lat to a local metric frame and back."""

import json
import pickle

import numpy as np
import pyproj
import pytest

from trajcross_jax.data import geo

NICOSIA = (33.36, 35.17)
SOUTH = (-58.38, -34.60)  # Buenos Aires.
NEAR_180 = (179.95, -16.5)  # Fiji, just west of the antimeridian.
GEOD = pyproj.Geod(ellps='WGS84')


def cloud(centre: tuple[float, float], radius_deg: float = 0.05, n: int = 50) -> np.ndarray:
  """(n, 2) lon, lat points scattered around `centre`, wrapped into [-180, 180]."""
  rng = np.random.default_rng(0)
  points = np.asarray(centre) + rng.uniform(-radius_deg, radius_deg, (n, 2))
  points[:, 0] = (points[:, 0] + 180) % 360 - 180
  return points


def lon_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """a - b in degrees of longitude, the short way round (179.9 - -179.9 is -0.2)."""
  return (np.asarray(a) - np.asarray(b) + 180) % 360 - 180


@pytest.mark.parametrize('kind', geo.KINDS)
@pytest.mark.parametrize('centre', [NICOSIA, SOUTH, NEAR_180], ids=['nicosia', 'south', 'near180'])
def test_round_trips(kind, centre):
  lonlat = cloud(centre)
  projection = geo.choose_projection(lonlat, kind)
  xy = projection.forward(lonlat)
  assert xy.shape == lonlat.shape
  back = projection.inverse(xy)
  np.testing.assert_allclose(lon_difference(back[:, 0], lonlat[:, 0]), 0, atol=1e-8)
  np.testing.assert_allclose(back[:, 1], lonlat[:, 1], atol=1e-8)
  assert np.all(np.abs(back[:, 0]) <= 180)
  np.testing.assert_allclose(projection.forward(back), xy, atol=1e-3)


@pytest.mark.parametrize('kind', geo.KINDS)
def test_metres_round_trip(kind):
  projection = geo.choose_projection(cloud(NICOSIA), kind)
  xy = projection.forward(np.array(NICOSIA)) + np.random.default_rng(1).uniform(-5e3, 5e3, (20, 2))
  np.testing.assert_allclose(projection.forward(projection.inverse(xy)), xy, atol=1e-3)


def test_local_frame_is_centred_and_keeps_leading_dims():
  lonlat = cloud(NICOSIA).reshape(5, 10, 2)
  projection = geo.choose_projection(lonlat)
  xy = projection.forward(lonlat)
  assert xy.shape == (5, 10, 2)
  # The local frame's origin is the data's centre, so the points sit near 0 (within ~7 km).
  assert np.abs(xy).max() < 7e3
  centre = projection.forward(np.array([lonlat[..., 0].mean(), lonlat[..., 1].mean()]))
  np.testing.assert_allclose(centre, 0, atol=0.5)


@pytest.mark.parametrize('azimuth', [0.0, 45.0, 90.0, 200.0])
@pytest.mark.parametrize('centre', [NICOSIA, SOUTH], ids=['nicosia', 'south'])
def test_local_distance_matches_geodesic(centre, azimuth):
  start = np.array(centre) + 0.01
  lon, lat, _ = GEOD.fwd(start[0], start[1], azimuth, 1000.0)
  points = np.array([start, [lon, lat]])
  projection = geo.choose_projection(cloud(centre), 'local')
  xy = projection.forward(points)
  distance = np.linalg.norm(xy[1] - xy[0])
  _, _, geodesic = GEOD.inv(points[0, 0], points[0, 1], points[1, 0], points[1, 1])
  assert geodesic == pytest.approx(1000.0)
  assert distance == pytest.approx(geodesic, rel=1e-3)  # The requirement.
  # What a scale-1 frame at the centre actually achieves this close to it (a UTM-like k=0.9996
  # would be off by 4e-4).
  assert distance == pytest.approx(geodesic, rel=1e-5)
  # x is east, y is north.
  heading = np.degrees(np.arctan2(xy[1, 0] - xy[0, 0], xy[1, 1] - xy[0, 1]))
  assert (heading - azimuth + 180) % 360 - 180 == pytest.approx(0, abs=0.5)


@pytest.mark.parametrize('kind', geo.KINDS)
def test_antimeridian_crossing(kind):
  lonlat = np.array([[179.999, 0.0], [-179.999, 0.0]])
  projection = geo.choose_projection(lonlat, kind)
  xy = projection.forward(lonlat)
  _, _, geodesic = GEOD.inv(179.999, 0.0, -179.999, 0.0)
  assert geodesic == pytest.approx(222.6, abs=0.1)
  assert np.linalg.norm(xy[1] - xy[0]) == pytest.approx(geodesic, rel=1e-3)
  assert xy[1, 0] > xy[0, 0]  # Eastward across the antimeridian is eastward in metres.
  back = projection.inverse(xy)
  np.testing.assert_allclose(lon_difference(back[:, 0], lonlat[:, 0]), 0, atol=1e-8)


def test_antimeridian_track_is_continuous():
  lon = np.linspace(179.9, 180.1, 21)
  lonlat = np.stack([(lon + 180) % 360 - 180, np.full_like(lon, -16.5)], axis=-1)
  projection = geo.choose_projection(lonlat)
  assert '+lon_0=180.000000 ' in projection.definition
  steps = np.linalg.norm(np.diff(projection.forward(lonlat), axis=0), axis=-1)
  # 0.01 degrees of longitude at 16.5 S is about 1.07 km; no step jumps round the globe.
  np.testing.assert_allclose(steps, steps[0], rtol=1e-4)
  assert 1.0e3 < steps[0] < 1.1e3


def test_centre_is_circular_mean():
  projection = geo.choose_projection(np.array([[179.9, 10.0], [-179.9, 20.0]]))
  assert '+lon_0=180.000000 +' in projection.definition
  assert '+lat_0=15.000000 +' in projection.definition
  projection = geo.choose_projection(np.array([[-0.5, 0.0], [0.5, 0.0]]))
  assert '+lon_0=0.000000 +' in projection.definition and '-0.0' not in projection.definition


@pytest.mark.parametrize(
  'centre, code',
  [
    (NICOSIA, 'EPSG:32636'),
    (SOUTH, 'EPSG:32721'),
    ((15.0, 52.0), 'EPSG:32633'),
    ((179.999, 0.1), 'EPSG:32660'),
    ((-179.999, 0.1), 'EPSG:32601'),
  ],
)
def test_utm_zone(centre, code):
  projection = geo.choose_projection(np.array([centre]), 'utm')
  assert projection == geo.Projection('utm', code)
  # The UTM frame is the standard one: 500 km false easting at the zone's central meridian.
  zone = int(code[-2:])
  central = -183 + 6 * zone
  x, y = projection.forward(np.array([central, centre[1]]))
  assert x == pytest.approx(500_000, abs=1e-3)
  # About 111 km a degree from the equator; southern zones add a 10,000 km false northing.
  assert y == pytest.approx(111_000 * centre[1] + (1e7 if centre[1] < 0 else 0), rel=0.01)


def test_same_input_same_definition():
  lonlat = cloud(NICOSIA)
  first = geo.choose_projection(lonlat)
  # Reordering changes the floating-point sums, not the rounded centre.
  second = geo.choose_projection(lonlat[::-1].copy())
  assert first == second and first.definition == second.definition
  assert hash(first) == hash(second)
  assert first.definition.startswith('+proj=tmerc +lat_0=35.')
  assert geo.choose_projection(lonlat + [0.001, 0]).definition != first.definition


def test_json_and_pickle_round_trip():
  for kind in geo.KINDS:
    projection = geo.choose_projection(cloud(SOUTH), kind)
    stored = json.loads(json.dumps(projection.to_json()))
    assert geo.Projection.from_json(stored) == projection
    assert pickle.loads(pickle.dumps(projection)) == projection
    point = np.array([SOUTH])
    np.testing.assert_array_equal(
      geo.Projection.from_json(stored).forward(point), projection.forward(point)
    )


@pytest.mark.parametrize(
  'stored, match',
  [
    ({'kind': 'local'}, 'keys kind and definition'),
    (['local', '+proj=tmerc'], 'keys kind and definition'),
    ({'kind': 'polar', 'definition': 'EPSG:3413'}, 'unknown projection kind'),
    ({'kind': 'utm', 'definition': 32633}, 'must be a string'),
    ({'kind': 'utm', 'definition': '+proj=nonsense'}, 'not a CRS'),
  ],
)
def test_from_json_errors(stored, match):
  with pytest.raises(geo.ProjectionError, match=match):
    geo.Projection.from_json(stored)


def test_box_to_lonlat():
  projection = geo.choose_projection(cloud(NICOSIA), 'local')
  corners = projection.forward(np.array([[33.35, 35.18], [33.37, 35.16]]))  # top-left, bottom-right
  box = np.concatenate([corners[0], corners[1]])
  assert box[0] < box[2] and box[1] > box[3]
  np.testing.assert_allclose(
    geo.box_to_lonlat(projection, box), [33.35, 35.18, 33.37, 35.16], atol=1e-9
  )
  boxes = np.stack([box, box + [10, 10, 10, 10]]).reshape(2, 1, 4)
  result = geo.box_to_lonlat(projection, boxes)
  assert result.shape == (2, 1, 4)
  # Shifting a box 10 m east and north moves it about 1.1e-4 degrees east and 9e-5 degrees north.
  assert 1.0e-4 < result[1, 0, 0] - result[0, 0, 0] < 1.2e-4
  assert 8.5e-5 < result[1, 0, 1] - result[0, 0, 1] < 9.5e-5
  with pytest.raises(ValueError, match=r'\(\.\.\., 4\)'):
    geo.box_to_lonlat(projection, box[:3])


@pytest.mark.parametrize(
  'lonlat, match',
  [
    (np.zeros((0, 2)), 'no points'),
    (np.zeros((3, 3)), r'shape \(\.\.\., 2\)'),
    (np.array([[33.0, 35.0], [np.nan, 35.0]]), 'NaN or infinity'),
    (np.array([[33.0, 35.0], [33.0, np.inf]]), 'NaN or infinity'),
    (np.array([[35.0, 95.0]]), r'latitude \[95, 95\] is outside \[-90, 90\]'),
    (np.array([[181.0, 35.0]]), r'longitude \[181, 181\] is outside \[-180, 180\]'),
    (np.array([[10.0, 89.5]]), 'pole'),
    (np.array([[10.0, -89.2], [10.0, -88.0]]), 'pole'),
    (np.array([[0.0, 35.0], [25.0, 35.0]]), r'longitude \[0, 25\].*split the data by region'),
    (np.array([[170.0, 0.0], [-170.0, 0.0], [-155.0, 0.0]]), 'split the data by region'),
    (np.array([[33.0, 20.0], [33.0, 45.0]]), r'latitude \[20, 45\].*split the data by region'),
  ],
)
def test_choose_projection_errors(lonlat, match):
  for kind in geo.KINDS:
    with pytest.raises(ValueError, match=match) as info:
      geo.choose_projection(lonlat, kind)
    if 'shape' not in match:
      assert isinstance(info.value, geo.ProjectionError)


def test_spread_within_limits_is_accepted():
  # 9.5 degrees either side of the centre is accepted, measured the short way across 180.
  projection = geo.choose_projection(np.array([[170.5, 0.0], [-170.5, 0.0]]))
  assert '+lon_0=180.000000 +' in projection.definition
  projection = geo.choose_projection(np.array([[33.0, 25.5], [33.0, 44.5]]))
  assert '+lat_0=35.000000 +' in projection.definition


def test_unknown_kind():
  with pytest.raises(geo.ProjectionError, match='unknown projection kind'):
    geo.choose_projection(np.array([NICOSIA]), 'mercator')
  with pytest.raises(geo.ProjectionError, match='unknown projection kind'):
    geo.Projection('mercator', 'EPSG:3857')
