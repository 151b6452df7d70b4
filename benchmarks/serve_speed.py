"""A bounded load test of the service on loopback: requests/s and latency at concurrency 1, 8, 32.

  python -m benchmarks.serve_speed [--gallery runs/search_speed/gallery-1000000]

Builds the gallery's image indexes if missing (exact, and FAISS chosen under the default memory
budget), then for each of KINDS (exact; FAISS; FAISS with the demo's re-ranker over its top
candidates) starts the service in its own process (the gallery embedded by the demo model's
checkpoint, so the demo parameters serve it) and sends a fixed number of
POST /search requests (trajectory queries of gallery items, k = 10) from --concurrency
keep-alive connections: requests/s, p50 / p99 latency, errors. Writes
benchmarks/results/serve_speed.json.
"""

import concurrent.futures
import http.client
import json
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
from absl import app, flags, logging

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / 'benchmarks' / 'results'

_GALLERY = flags.DEFINE_string(
  'gallery', str(REPO / 'runs' / 'search_speed' / 'gallery-1000000'), 'An embedding directory.'
)
_REQUESTS = flags.DEFINE_integer('requests', 300, 'Requests per concurrency level.')
_CONCURRENCY = flags.DEFINE_list('concurrency', ['1', '8', '32'], 'Concurrent connections.')
# Each served in its own process: exact search, the FAISS index, and the FAISS index with the
# demo's re-ranker over its top candidates (the gallery items read back from the dataset).
KINDS = ('exact', 'faiss', 'faiss+rerank')
_SERVE = flags.DEFINE_string('serve', '', 'Internal: serve this kind of index on --port.')
_PORT = flags.DEFINE_integer('port', 0, 'Internal: the port to serve on.')


def serve(kind: str, port: int) -> None:
  from trajcross_jax.serve import app as app_lib
  from trajcross_jax.serve import demo, run

  gallery = _GALLERY.value
  index_kind, _, rerank = kind.partition('+')
  reranker = demo.load_reranker() if rerank else None

  def loader():
    return {'bench': app_lib.Gallery.load('bench', gallery, demo.load(), index_kind, reranker)}

  run.serve(loader, '127.0.0.1', port)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def wait_ready(port: int, process, timeout_s: float = 1800) -> None:
  deadline = time.time() + timeout_s
  while time.time() < deadline:
    if process.poll() is not None:
      raise RuntimeError('the service exited')
    try:
      connection = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
      connection.request('GET', '/health')
      if connection.getresponse().status == 200:
        return
    except OSError:
      pass
    time.sleep(1)
  raise TimeoutError('the service did not become ready')


def load(port: int, bodies: list[bytes], concurrency: int) -> dict:
  """Sends every body once from `concurrency` keep-alive connections; latencies in seconds."""
  chunks = [bodies[i::concurrency] for i in range(concurrency)]

  def worker(chunk):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    out = []
    for body in chunk:
      start = time.perf_counter()
      connection.request('POST', '/search', body, {'Content-Type': 'application/json'})
      response = connection.getresponse()
      response.read()
      out.append((time.perf_counter() - start, response.status))
    connection.close()
    return out

  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
    done = [r for chunk in pool.map(worker, chunks) for r in chunk]
  wall = time.perf_counter() - start
  latencies = np.array([t for t, _ in done])
  return {
    'requests': len(done),
    'requests_per_s': len(done) / wall,
    'p50_ms': 1e3 * float(np.percentile(latencies, 50)),
    'p99_ms': 1e3 * float(np.percentile(latencies, 99)),
    'errors': int(sum(status != 200 for _, status in done)),
  }


def main(argv):
  del argv
  if _SERVE.value:
    serve(_SERVE.value, _PORT.value)
    return
  from trajcross_jax.search import gallery as gallery_lib
  from trajcross_jax.search import index as index_lib
  from trajcross_jax.search import query

  directory = pathlib.Path(_GALLERY.value)
  manifest = gallery_lib.read_manifest(directory)
  for kind in ('exact', 'faiss'):
    if not (directory / f'index-image-{kind}' / 'index.json').exists():
      logging.info('Building the %s image index of %s', kind, directory)
      index_lib.build(directory, 'image', kind)
  source = query.dataset_source(manifest)
  rng = np.random.default_rng(0)
  ids = rng.choice(manifest['num_items'], _REQUESTS.value, replace=False).tolist()
  bodies = [
    json.dumps({'trajectory': np.asarray(e['trajectory']).tolist(), 'k': 10}).encode()
    for e in source.__getitems__(ids)
  ]
  rows = []
  for kind in KINDS:
    port = free_port()
    cmd = [
      sys.executable,
      '-m',
      'benchmarks.serve_speed',
      f'--serve={kind}',
      f'--port={port}',
      f'--gallery={directory}',
    ]
    process = subprocess.Popen(cmd, cwd=REPO)
    try:
      wait_ready(port, process)
      load(port, bodies[:50], 4)  # Warm the connections and the batch shapes.
      for concurrency in (int(c) for c in _CONCURRENCY.value):
        row = load(port, bodies, concurrency)
        index_kind, _, rerank = kind.partition('+')
        path = directory / f'index-image-{index_kind}' / 'index.json'
        record = json.loads(path.read_text())
        name = index_kind if index_kind == 'exact' else f'faiss:{record["factory"]}'
        row.update(
          gallery_size=manifest['num_items'],
          index=name + ('+rerank' if rerank else ''),
          concurrency=concurrency,
        )
        logging.info('%s', row)
        rows.append(row)
    finally:
      process.terminate()
      process.wait(timeout=60)
  from benchmarks import machine

  RESULTS.mkdir(parents=True, exist_ok=True)
  (RESULTS / 'serve_speed.json').write_text(
    json.dumps(
      {
        'command': 'python -m benchmarks.serve_speed',
        'gallery': str(directory),
        'machine': machine.describe(),
        'rows': rows,
      },
      indent=2,
    )
    + '\n'
  )


if __name__ == '__main__':
  app.run(main)
