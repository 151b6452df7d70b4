"""The service over real HTTP on 127.0.0.1: `trajcross serve --demo` started by the test."""

import base64
import concurrent.futures
import http.client
import io
import json
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import http_get as get
from PIL import Image

from trajcross_jax.serve import app as app_lib
from trajcross_jax.serve import demo


def post(base: str, body, content_type='application/json', headers=None):
  data = body if isinstance(body, bytes) else json.dumps(body).encode()
  request = urllib.request.Request(
    base + '/search', data=data, headers={'Content-Type': content_type, **(headers or {})}
  )
  try:
    with urllib.request.urlopen(request, timeout=60) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def png_base64(image: np.ndarray) -> str:
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(image)[..., 0]).save(buffer, format='PNG')
  return base64.b64encode(buffer.getvalue()).decode()


def test_health_and_indexes(demo_service):
  base, source = demo_service
  status, body = get(base, '/health')
  assert status == 200 and json.loads(body) == {'status': 'ready', 'indexes': ['univ-test']}
  status, body = get(base, '/indexes')
  (index,) = json.loads(body)['indexes']
  assert index['name'] == 'univ-test' and index['size'] == len(source) == 2379
  assert index['query_modalities'] == ['image', 'trajectory']
  assert index['model']['params_hash'] == demo.record()['params_hash']


def test_a_trajectory_finds_its_own_pair_first(demo_service):
  base, source = demo_service
  retriever = demo.load()
  items = source.__getitems__(list(range(40)))
  trajectories = np.stack([e['trajectory'] for e in items])
  images = source.__getitems__(list(range(len(source))))
  z_img = retriever.embed_images(
    np.stack([e['image'] for e in images]), np.stack([e['box'] for e in images])
  )
  expected = np.argsort(-(retriever.embed_trajectories(trajectories) @ z_img.T), axis=1)[:, :5]
  firsts = []
  for i, t in enumerate(trajectories):
    status, body = post(base, {'trajectory': t.tolist(), 'k': 5, 'rerank': False})
    assert status == 200 and body['reranked'] is False
    ids = [r['id'] for r in body['results']]
    assert ids == expected[i].tolist()  # The bi-encoder's own ranking of the whole gallery.
    firsts.append(ids[0] == i)
    assert {'id', 'score', 'rank', 'source', 'ped_id', 'start_frame', 'box'} <= set(
      body['results'][0]
    )
  assert np.mean(firsts) >= 0.6  # The demo's bi-encoder alone (its test top@1: model.json).


def test_searches_are_reranked_by_default(demo_service):
  base, source = demo_service
  reranker = demo.load_reranker()
  status, body = get(base, '/indexes')
  assert json.loads(body)['indexes'][0]['rerank'] == {'candidates': reranker.candidates}
  items = source.__getitems__(list(range(40)))
  firsts = []
  for i, item in enumerate(items):
    t = item['trajectory'].tolist()
    _, first = post(base, {'trajectory': t, 'k': reranker.candidates, 'rerank': False})
    status, body = post(base, {'trajectory': t, 'k': 5})
    assert status == 200 and body['reranked'] is True
    ids = [r['id'] for r in body['results']]
    # The best 5 of the index's top candidates, by the cross-encoder's scores.
    assert set(ids) <= {r['id'] for r in first['results']}
    cross = [r['rerank_score'] for r in body['results']]
    assert cross == sorted(cross, reverse=True)
    found = source.__getitems__(ids)
    expected = reranker.score(
      np.repeat(item['trajectory'][None], 5, 0),
      np.stack([f['image'] for f in found]),
      np.stack([f['box'] for f in found]),
    )
    np.testing.assert_allclose(cross, expected, rtol=1e-4, atol=1e-4)
    firsts.append(ids[0] == i)
  assert np.mean(firsts) >= 0.85  # The demo's two stages (model.json: test_results_reranked).


def test_queries_by_geojson_image_multipart_and_item(demo_service):
  base, source = demo_service
  item = source[7]
  line = {'type': 'LineString', 'coordinates': item['trajectory'].tolist()}
  status, by_geojson = post(base, {'trajectory': line, 'k': 3, 'index': 'univ-test'})
  status2, by_list = post(base, {'trajectory': item['trajectory'].tolist(), 'k': 3})
  assert status == status2 == 200 and by_geojson['results'] == by_list['results']
  box = [float(v) for v in item['box']]
  status, by_image = post(base, {'image': png_base64(item['image']), 'box': box, 'k': 3})
  assert status == 200 and by_image['result_modality'] == 'trajectory'
  status, by_item = post(base, {'item': {'modality': 'image', 'id': 7}, 'k': 3})
  assert by_item['results'] == by_image['results']
  # The same image as a multipart upload.
  boundary = 'xxBOUNDARYxx'
  png = base64.b64decode(png_base64(item['image']))
  parts = [
    f'--{boundary}\r\nContent-Disposition: form-data; name="box"\r\n\r\n{json.dumps(box)}\r\n',
    f'--{boundary}\r\nContent-Disposition: form-data; name="k"\r\n\r\n3\r\n',
  ]
  body = (
    ''.join(parts).encode()
    + (
      f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\n'
      'Content-Type: image/png\r\n\r\n'
    ).encode()
    + png
    + f'\r\n--{boundary}--\r\n'.encode()
  )
  status, by_upload = post(base, body, f'multipart/form-data; boundary={boundary}')
  assert status == 200 and by_upload['results'] == by_image['results']


def test_items(demo_service):
  base, source = demo_service
  item = source[3]
  status, png = get(base, '/items/univ-test/3?modality=image')
  assert status == 200
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), item['image'][..., 0])
  with urllib.request.urlopen(base + '/items/univ-test/3') as response:
    assert json.loads(response.headers['X-Box']) == pytest.approx(item['box'].tolist())
  status, body = get(base, '/items/univ-test/3?modality=trajectory')
  np.testing.assert_allclose(json.loads(body)['trajectory'], item['trajectory'], rtol=1e-6)
  status, body = get(base, '/items/univ-test/3?modality=trajectory&format=geojson')
  feature = json.loads(body)
  assert feature['geometry']['type'] == 'LineString'
  assert feature['properties']['crs'] == 'metres'  # univ is in metres: no projection.


@pytest.mark.parametrize(
  'body, status, field, message',
  [
    ({'k': 5}, 422, 'body', 'give exactly one of'),
    ({'trajectory': [[1, 2]], 'k': 5}, 422, 'trajectory', 'at least 2 points'),
    ({'trajectory': [[1, 'x'], [2, 3]]}, 422, 'trajectory', 'list of'),
    ({'trajectory': [[1, float('nan')], [2, 3]]}, 422, 'trajectory', 'NaN'),
    ({'trajectory': {'type': 'Point', 'coordinates': [1, 2]}}, 422, 'trajectory', 'LineString'),
    ({'trajectory': [[1, 2], [2, 3]], 'k': 0}, 422, 'k', 'k must be an integer in'),
    ({'trajectory': [[1, 2], [2, 3]], 'k': 101}, 422, 'k', 'k must be an integer in'),
    ({'trajectory': [[1, 2], [2, 3]], 'index': 'nope'}, 404, None, "no index 'nope'"),
    ({'image': 'not base64!!', 'box': [0, 1, 1, 0]}, 422, 'image', 'base64'),
    (
      {'image': png_base64(np.zeros((32, 32, 1), np.uint8)), 'box': [0, 1, 1, 0]},
      422,
      'image',
      'must be 64 x 64',
    ),
    (
      {'image': png_base64(np.zeros((64, 64, 1), np.uint8)), 'box': [1, 1, 1, 0]},
      422,
      'box',
      'x_left',
    ),
    (
      {'image': png_base64(np.zeros((64, 64, 1), np.uint8)), 'box': [0, 0, 1, 0]},
      422,
      'box',
      'y_top',
    ),
    ({'image': png_base64(np.zeros((64, 64, 1), np.uint8)), 'box': [0, 1]}, 422, 'box', 'box must'),
    ({'item': {'modality': 'image', 'id': 99999}}, 404, None, 'no item 99999'),
    ({'trajectory': [[1, 2], [2, 3]], 'rerank': 'yes'}, 422, 'rerank', 'true or false'),
  ],
)
def test_bad_queries_are_json_errors_naming_the_field(demo_service, body, status, field, message):
  base, _ = demo_service
  got, answer = post(base, body)
  assert got == status
  assert answer['field'] == field and message in answer['error']
  assert 'Traceback' not in json.dumps(answer)


def test_bad_requests_are_json(demo_service):
  base, _ = demo_service
  status, answer = post(base, b'{not json')
  assert status == 422 and answer['field'] == 'body'
  # A body announced over the limit is refused before it is read.
  host, port = base.removeprefix('http://').split(':')
  connection = http.client.HTTPConnection(host, int(port), timeout=60)
  connection.putrequest('POST', '/search')
  connection.putheader('Content-Type', 'application/json')
  connection.putheader('Content-Length', str(app_lib.MAX_BODY_BYTES + 1))
  connection.endheaders()
  response = connection.getresponse()
  assert response.status == 413 and 'at most' in json.loads(response.read())['error']
  connection.close()
  status, body = get(base, '/items/univ-test/99999')
  assert status == 404 and 'no item 99999' in json.loads(body)['error']
  status, body = get(base, '/items/elsewhere/1')
  assert status == 404 and "no index 'elsewhere'" in json.loads(body)['error']
  status, body = get(base, '/items/univ-test/1?modality=sound')
  assert status == 422 and json.loads(body)['field'] == 'modality'


def test_queries_arriving_together_are_batched_and_metrics_count_them(demo_service):
  base, source = demo_service
  trajectories = [source[i]['trajectory'].tolist() for i in range(32)]
  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    answers = list(pool.map(lambda t: post(base, {'trajectory': t, 'k': 1}), trajectories * 2))
  assert all(status == 200 for status, _ in answers)
  status, text = get(base, '/metrics')
  text = text.decode()
  assert status == 200
  batches = {
    line.split()[0].split('{')[0]: float(line.split()[-1])
    for line in text.splitlines()
    if line.startswith('trajcross_batch_size_')
    and not line.startswith('#')
    and 'bucket' not in line
  }
  # Fewer batches than requests: some arrived together and went to the device as one.
  assert batches['trajcross_batch_size_sum'] > batches['trajcross_batch_size_count']
  assert 'trajcross_requests_total{endpoint="/search",status="200"}' in text
  assert 'trajcross_request_seconds_bucket{endpoint="/search",le="0.05"}' in text


def test_the_page_and_its_files_are_served(demo_service):
  base, _ = demo_service
  for path, marker in (
    ('/', b'<canvas id="scene"'),
    ('/app.js', b'window.trajcross'),
    ('/style.css', b'.grid'),
  ):
    status, body = get(base, path)
    assert status == 200 and marker in body
  status, body = get(base, '/')
  assert b'http://' not in body and b'https://' not in body  # Nothing from the internet.


def test_serve_needs_demo_or_an_index():
  run = subprocess.run(
    [sys.executable, '-c', 'from trajcross_jax.serve import run; run.cli([])'],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert run.returncode != 0 and 'give --demo, or one or more --index' in run.stderr
