"""The search service: FastAPI over one or more named galleries, and the web page.

Endpoints (JSON errors everywhere, never a stack trace):
  POST /search                  a trajectory ([[x, y], ...] metres, or a GeoJSON LineString) or an
                                image (base64 PNG, or multipart) with its box, or a gallery item;
                                k, the gallery name, rerank (default: true where the gallery's
                                model has a re-ranker) -> results, best first
  GET  /items/{index}/{id}      the item: ?modality=image (PNG, box in the X-Box header) or
                                trajectory (?format=json|geojson)
  GET  /indexes                 the galleries: sizes, modalities, index kinds, scene extent
  GET  /health                  503 until every model is compiled and every index loaded
  GET  /metrics                 Prometheus text: requests by endpoint and status, latencies
  GET  /                        the page (static/, no build step, nothing from the internet)

Queries that arrive together are embedded and searched as one batch on the device (Batcher).
"""

import asyncio
import base64
import contextlib
import dataclasses
import io
import json
import time
from typing import Any

import numpy as np
import prometheus_client
from etils import epath
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException

from trajcross_jax import parallel
from trajcross_jax.data import geo, pipeline, resample
from trajcross_jax.rerank import reranker as rerank_lib
from trajcross_jax.retriever import InputError, Retriever, check_boxes, read_png
from trajcross_jax.search import gallery as gallery_lib
from trajcross_jax.search import query as query_lib
from trajcross_jax.search.index import Index, SearchIndexError, other_modality

STATIC = epath.Path(__file__).parent / 'static'
MAX_BODY_BYTES = 2 * 2**20  # A 64 x 64 PNG is a few KB; a trajectory a few hundred bytes.
MAX_K = 100
MAX_BATCH = 64  # Queries embedded and searched together.
BATCH_WAIT_S = 0.002  # How long the first query of a batch waits for company.


class QueryError(ValueError):
  """A query the service rejects (422): `field` names what is wrong."""

  def __init__(self, field: str, message: str):
    super().__init__(message)
    self.field = field


@dataclasses.dataclass(eq=False)
class Gallery:
  """A named gallery: its embedding directory's indexes, the model, and its items."""

  name: str
  retriever: Retriever
  indexes: dict[str, Index]  # By the modality the index holds.
  manifest: dict[str, Any]
  source: Any  # Random access to the gallery's dataset split (its items).
  projection: geo.Projection | None
  reranker: rerank_lib.Reranker | None = None  # The second stage, where the model has one.

  @classmethod
  def load(
    cls,
    name: str,
    directory: epath.PathLike,
    retriever: Retriever | None = None,
    kind: str | None = None,
    reranker: rerank_lib.Reranker | None = None,
  ):
    """The indexes in `directory` (of `kind`, or exact where both are), with the model its
    manifest names (or `retriever`, which must be that model), and the re-ranker trained
    beside that model's checkpoint if there is one (or `reranker`, which must be of it)."""
    directory = epath.Path(directory)
    manifest = gallery_lib.read_manifest(directory)
    indexes = {}
    for modality in manifest['modalities']:
      for each in (kind,) if kind else ('exact', 'faiss'):
        path = directory / f'index-{modality}-{each}'
        if path.exists() and modality not in indexes:
          indexes[modality] = Index.load(path)
    if not indexes:
      raise SearchIndexError(f'{directory} has no index: run --mode=index on it first')
    if retriever is None:
      checkpoint = manifest['checkpoint']
      retriever = Retriever.load(checkpoint['workdir'], checkpoint['step'])
      if reranker is None:
        reranker = rerank_lib.Reranker.find(checkpoint['workdir'], retriever.params_hash)
    if reranker is not None:
      rerank_lib.check_trained_on(
        reranker.record, retriever.params_hash, f'the re-ranker given for {name!r}'
      )
    for index in indexes.values():
      query_lib.Searcher(retriever, index)  # Refuses an index of another checkpoint.
    builder = query_lib.dataset_builder(manifest)
    return cls(
      name=name,
      retriever=retriever,
      indexes=indexes,
      manifest=manifest,
      source=builder.as_data_source(split=manifest['split']),
      projection=pipeline.projection(builder),
      reranker=reranker,
    )

  @property
  def size(self) -> int:
    return int(self.manifest['num_items'])

  def describe(self) -> dict[str, Any]:
    frame = self.retriever.normalisation
    (cx, cy), s = frame.center, frame.scale
    return {
      'name': self.name,
      'size': self.size,
      'dataset': self.manifest['dataset'],
      'split': self.manifest['split'],
      'indexes': {m: i.record['kind'] for m, i in self.indexes.items()},
      'query_modalities': sorted(other_modality(m) for m in self.indexes),
      'window_length': self.retriever.window_length,
      # The scene the model knows: its frame's box, in metres (the page's canvas).
      'extent': [cx - s, cy - s, cx + s, cy + s],
      'lonlat': self.projection is not None,
      'model': {k: self.manifest['checkpoint'][k] for k in ('step', 'params_hash')},
      # Searches re-rank the index's top `candidates` unless a request says "rerank": false.
      'rerank': None if self.reranker is None else {'candidates': self.reranker.candidates},
    }

  def item(self, item_id: int) -> dict[str, Any]:
    if not 0 <= item_id < self.size:
      raise HTTPException(404, f'no item {item_id} in {self.name!r} (ids 0 to {self.size - 1})')
    return self.source[item_id]


class Batcher:
  """Gathers the queries of one gallery and modality that arrive together into one batch."""

  def __init__(self, gallery: Gallery, modality: str, sizes):
    self.gallery = gallery
    self.modality = modality
    self.queue: asyncio.Queue = asyncio.Queue()
    self.task: asyncio.Task | None = None
    self.sizes = sizes  # A histogram of batch sizes (Metrics.batch).

  async def search(self, arrays: dict[str, np.ndarray], k: int, rerank: bool):
    """(bi-encoder scores (k,), ids (k,), cross-encoder scores (k,) or None), best first."""
    if self.task is None:
      self.task = asyncio.get_running_loop().create_task(self._run())
    future = asyncio.get_running_loop().create_future()
    await self.queue.put((arrays, (k, rerank), future))
    return await future

  async def _run(self):
    while True:
      batch = [await self.queue.get()]
      deadline = time.perf_counter() + BATCH_WAIT_S
      while len(batch) < MAX_BATCH:
        timeout = deadline - time.perf_counter()
        if timeout <= 0:
          break
        try:
          batch.append(await asyncio.wait_for(self.queue.get(), timeout))
        except TimeoutError:
          break
      self.sizes.observe(len(batch))
      try:
        found = await asyncio.to_thread(self._search, batch)
      except Exception as e:  # noqa: BLE001  Each waiting request gets the error.
        for _, _, future in batch:
          future.set_exception(e)
        continue
      for (_, _, future), result in zip(batch, found, strict=True):
        future.set_result(result)

  def _search(self, batch) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    g = self.gallery
    index = g.indexes[other_modality(self.modality)]
    names = ('trajectory',) if self.modality == 'trajectory' else ('image', 'box')
    arrays = {n: np.concatenate([a[n] for a, _, _ in batch]) for n in names}
    if self.modality == 'trajectory':
      z = g.retriever.embed_trajectories(arrays['trajectory'])
    else:
      z = g.retriever.embed_images(arrays['image'], arrays['box'])
    ks = np.array([k for _, (k, _), _ in batch])
    reranked = np.array([rerank for _, (_, rerank), _ in batch])
    head = g.reranker.candidates if reranked.any() else 0
    scores, ids = index.search(z, int(max(ks.max(), min(head, g.size))))
    cross = [None] * len(batch)
    if reranked.any():  # One cross-encoder call for every request that asked for it.
      rows = np.flatnonzero(reranked)
      picked = {n: v[rows] for n, v in arrays.items()}
      top_s, top_i, top_c = query_lib.rerank_hits(
        g.reranker, self.modality, picked, scores[rows], ids[rows], g.source, ids.shape[1]
      )
      scores, ids = scores.copy(), ids.copy()
      scores[rows], ids[rows] = top_s, top_i
      for j, row in enumerate(rows):
        cross[row] = top_c[j, : ks[row]]
    return [(scores[i, :k], ids[i, :k], cross[i]) for i, k in enumerate(ks)]


@dataclasses.dataclass(eq=False)
class Metrics:
  """Prometheus counters in a registry of the app's own (several apps in one process)."""

  registry: prometheus_client.CollectorRegistry = dataclasses.field(
    default_factory=prometheus_client.CollectorRegistry
  )

  def __post_init__(self):
    self.requests = prometheus_client.Counter(
      'trajcross_requests',
      'Requests by endpoint and status.',
      ['endpoint', 'status'],
      registry=self.registry,
    )
    self.latency = prometheus_client.Histogram(
      'trajcross_request_seconds',
      'Request latency by endpoint.',
      ['endpoint'],
      registry=self.registry,
      buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
    )
    self.batch = prometheus_client.Histogram(
      'trajcross_batch_size',
      'Queries embedded and searched together.',
      registry=self.registry,
      buckets=(1, 2, 4, 8, 16, 32, 64),
    )


def create_app(loader) -> FastAPI:
  """The service. `loader()` returns {name: Gallery}; it runs (in a thread) at start-up, and
  /health says 'loading' until it has returned and every model has compiled."""
  state = {'galleries': None, 'batchers': {}, 'error': None}
  metrics = Metrics()

  @contextlib.asynccontextmanager
  async def lifespan(app: FastAPI):
    async def load():
      try:
        galleries = await asyncio.to_thread(loader)
        await asyncio.to_thread(_warm_up, galleries)
        state['galleries'] = galleries
      except Exception as e:  # noqa: BLE001  /health reports it; the process stays up.
        state['error'] = f'{type(e).__name__}: {e}'

    task = asyncio.get_running_loop().create_task(load())
    yield
    task.cancel()
    for batcher in state['batchers'].values():
      if batcher.task is not None:
        batcher.task.cancel()

  app = FastAPI(title='trajcross', docs_url='/docs', redoc_url=None, lifespan=lifespan)

  @app.middleware('http')
  async def _measure(request: Request, call_next):
    endpoint = _endpoint(request)
    start = time.perf_counter()
    length = request.headers.get('content-length')
    if request.method == 'POST' and (length is None or int(length) > MAX_BODY_BYTES):
      response = _error(
        413, 'body', f'a request body must say its length and be at most {MAX_BODY_BYTES} bytes'
      )
    else:
      try:
        response = await call_next(request)
      except Exception:  # noqa: BLE001  Never a stack trace to the client.
        response = _error(500, None, 'internal error')
    metrics.requests.labels(endpoint, str(response.status_code)).inc()
    metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
    return response

  @app.exception_handler(RequestValidationError)
  async def _invalid(request, error: RequestValidationError):
    first = error.errors()[0]
    field = '.'.join(str(p) for p in first.get('loc', ()) if p != 'body') or 'body'
    return _error(422, field, f'{field}: {first.get("msg", "invalid")}')

  @app.exception_handler(HTTPException)
  async def _http(request, error: HTTPException):
    return _error(error.status_code, None, str(error.detail))

  @app.exception_handler(QueryError)
  async def _query(request, error: QueryError):
    return _error(422, error.field, str(error))

  def galleries() -> dict[str, Gallery]:
    if state['galleries'] is None:
      raise HTTPException(503, state['error'] or 'loading: the model is compiling')
    return state['galleries']

  def pick(name: str | None) -> Gallery:
    served = galleries()
    if name is None:
      if len(served) != 1:
        raise QueryError('index', f'name the index: one of {sorted(served)}')
      return next(iter(served.values()))
    if name not in served:
      raise HTTPException(404, f'no index {name!r}; served: {sorted(served)}')
    return served[name]

  @app.get('/health')
  async def health():
    if state['galleries'] is not None:
      return {'status': 'ready', 'indexes': sorted(state['galleries'])}
    status = 'failed' if state['error'] else 'loading'
    return JSONResponse({'status': status, 'error': state['error']}, status_code=503)

  @app.get('/indexes')
  async def indexes():
    return {'indexes': [g.describe() for g in galleries().values()]}

  @app.get('/metrics')
  async def prometheus():
    return Response(prometheus_client.generate_latest(metrics.registry), media_type='text/plain')

  async def run_search(g: Gallery, modality: str, arrays, k: int, rerank: bool):
    if other_modality(modality) not in g.indexes:
      raise QueryError(modality, f'{g.name!r} has no index to search with a {modality}')
    key = (g.name, modality)
    if key not in state['batchers']:
      state['batchers'][key] = Batcher(g, modality, metrics.batch)
    try:
      scores, ids, cross = await state['batchers'][key].search(arrays, k, rerank)
    except InputError as e:
      raise QueryError(modality, str(e)) from None
    meta = gallery_lib.read_metadata(g.indexes[other_modality(modality)].embeddings_dir, ids)
    results = [
      dict(m, rank=r + 1, score=float(s)) for r, (m, s) in enumerate(zip(meta, scores, strict=True))
    ]
    if cross is not None:
      for hit, c in zip(results, cross, strict=True):
        hit['rerank_score'] = float(c) if np.isfinite(c) else None
    return {
      'index': g.name,
      'query_modality': modality,
      'result_modality': other_modality(modality),
      'reranked': cross is not None,
      'results': results,
    }

  @app.post('/search')
  async def search(request: Request):
    content_type = request.headers.get('content-type', '')
    if content_type.startswith('multipart/form-data'):
      form = await request.form()
      body = {key: form[key] for key in form}
      upload = body.pop('image', None)
      if upload is None or not hasattr(upload, 'read'):
        raise QueryError('image', 'a multipart query needs an image file field')
      png = await upload.read()
      body['box'] = _json_field(body, 'box')
      body['k'] = _int_field(body, 'k', 10)
      body['image_png'] = png
    else:
      try:
        body = json.loads(await request.body())
      except (json.JSONDecodeError, UnicodeDecodeError):
        raise QueryError('body', 'the body is not JSON') from None
      if not isinstance(body, dict):
        raise QueryError('body', 'the body must be a JSON object')
    g = pick(body.get('index'))
    k = body.get('k', 10)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= min(MAX_K, g.size):
      raise QueryError('k', f'k must be an integer in [1, {min(MAX_K, g.size)}], got {k!r}')
    rerank = body.get('rerank', g.reranker is not None)
    if not isinstance(rerank, bool):
      raise QueryError('rerank', f'rerank must be true or false, got {rerank!r}')
    if rerank and g.reranker is None:
      raise QueryError('rerank', f'{g.name!r} has no re-ranker: leave rerank out or false')
    modality, arrays = parse_query(body, g)
    return await run_search(g, modality, arrays, k, rerank)

  @app.get('/items/{name}/{item_id}')
  async def item(name: str, item_id: int, modality: str = 'image', format: str = 'json'):
    g = pick(name)
    example = g.item(item_id)
    box = [float(v) for v in example['box']]
    if modality == 'image':
      buffer = io.BytesIO()
      Image.fromarray(np.asarray(example['image'])[..., 0]).save(buffer, format='PNG')
      return Response(buffer.getvalue(), media_type='image/png', headers={'X-Box': json.dumps(box)})
    if modality != 'trajectory':
      raise QueryError('modality', f"modality must be 'image' or 'trajectory', got {modality!r}")
    points = np.asarray(example['trajectory'], np.float64)
    meta = {'id': item_id, 'box': box}
    if format == 'geojson':
      coords = g.projection.inverse(points) if g.projection is not None else points
      return {
        'type': 'Feature',
        'geometry': {'type': 'LineString', 'coordinates': coords.tolist()},
        'properties': dict(meta, crs='lonlat' if g.projection is not None else 'metres'),
      }
    if format != 'json':
      raise QueryError('format', f"format must be 'json' or 'geojson', got {format!r}")
    return dict(meta, trajectory=points.tolist())

  app.mount('/', StaticFiles(directory=str(STATIC), html=True), name='page')
  app.state.batchers = state['batchers']
  app.state.metrics = metrics
  return app


def parse_query(body: dict[str, Any], g: Gallery) -> tuple[str, dict[str, np.ndarray]]:
  """The query's modality and arrays, or QueryError naming the field."""
  given = [f for f in ('trajectory', 'image', 'image_png', 'item') if body.get(f) is not None]
  if len(given) != 1:
    raise QueryError('body', 'give exactly one of trajectory, image (with box) or item')
  m = g.retriever.window_length
  if 'item' in given:
    item = body['item']
    if not isinstance(item, dict) or item.get('modality') not in ('trajectory', 'image'):
      raise QueryError('item', "item must be {'id': N, 'modality': 'trajectory' | 'image'}")
    item_id = item.get('id')
    if isinstance(item_id, bool) or not isinstance(item_id, int):
      raise QueryError('item.id', f'item.id must be an integer, got {item_id!r}')
    example = g.item(item_id)
    if item['modality'] == 'trajectory':
      return 'trajectory', {'trajectory': np.asarray(example['trajectory'], np.float32)[None]}
    return 'image', {
      'image': np.asarray(example['image'])[None],
      'box': np.asarray(example['box'])[None],
    }
  if 'trajectory' in given:
    return 'trajectory', {'trajectory': parse_trajectory(body['trajectory'], m, g.projection)[None]}
  png = body['image_png'] if 'image_png' in given else _base64(body['image'])
  box = parse_box(body.get('box'))
  return 'image', {'image': parse_png(png)[None], 'box': box[None]}


def parse_trajectory(value, window_length: int, projection) -> np.ndarray:
  """[[x, y], ...] metres, or a GeoJSON LineString (lon/lat where the gallery has a projection).

  A line of another number of points is resampled to `window_length` points evenly along its
  length (a drawn line has no times).
  """
  if isinstance(value, dict):
    if value.get('type') != 'LineString' or 'coordinates' not in value:
      raise QueryError('trajectory', 'a GeoJSON trajectory must be a LineString with coordinates')
    value = value['coordinates']
    lonlat = projection is not None
  else:
    lonlat = False
  try:
    points = np.asarray(value, np.float64)
  except (TypeError, ValueError):
    raise QueryError('trajectory', 'trajectory must be a list of [x, y] numbers') from None
  if points.ndim != 2 or points.shape[1] < 2 or len(points) < 2:
    raise QueryError(
      'trajectory', f'trajectory must be at least 2 points [x, y], got shape {points.shape}'
    )
  points = points[:, :2]
  if not np.isfinite(points).all():
    raise QueryError('trajectory', 'trajectory has a NaN or infinite coordinate')
  if lonlat:
    try:
      points = projection.forward(points)
    except (ValueError, geo.ProjectionError) as e:
      raise QueryError('trajectory', f'trajectory: {e}') from None
  if len(points) != window_length:
    points = resample_to(points, window_length)
  return points.astype(np.float32)


def resample_to(points: np.ndarray, n: int) -> np.ndarray:
  """`n` points evenly spaced along a polyline (its ends kept)."""
  length = float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())
  if length == 0:
    return np.repeat(points[:1], n, axis=0)
  out = resample.by_distance(points, length / (n - 1) * (1 - 1e-9))
  return np.concatenate([out[: n - 1], points[-1:]])


def parse_box(value) -> np.ndarray:
  try:
    box = np.asarray(value, np.float64)
  except (TypeError, ValueError):
    raise QueryError('box', 'box must be [x_left, y_top, x_right, y_bottom] numbers') from None
  if box.shape != (4,):
    raise QueryError('box', f'box must be [x_left, y_top, x_right, y_bottom], got {value!r}')
  try:
    return check_boxes(box[None])[0]
  except InputError as e:
    raise QueryError('box', str(e).replace('box 0', 'box')) from None


def parse_png(data: bytes) -> np.ndarray:
  try:
    return read_png(data)
  except InputError as e:
    raise QueryError('image', f'image: {e}') from None


def _base64(value) -> bytes:
  if not isinstance(value, str):
    raise QueryError('image', 'image must be a base64 PNG string')
  try:
    return base64.b64decode(value.split(',', 1)[-1], validate=True)
  except ValueError:
    raise QueryError('image', 'image is not valid base64') from None


def _json_field(form: dict, name: str):
  try:
    return json.loads(form.get(name, ''))
  except (json.JSONDecodeError, TypeError):
    raise QueryError(name, f'{name} must be JSON, e.g. [0, 10, 10, 0]') from None


def _int_field(form: dict, name: str, default: int) -> int:
  if name not in form:
    return default
  try:
    return int(form[name])
  except ValueError:
    raise QueryError(name, f'{name} must be an integer') from None


def _error(status: int, field: str | None, message: str) -> JSONResponse:
  return JSONResponse({'error': message, 'field': field}, status_code=status)


def _endpoint(request: Request) -> str:
  path = request.url.path
  for prefix in ('/search', '/items', '/indexes', '/health', '/metrics'):
    if path.startswith(prefix):
      return prefix
  return 'page'


def _warm_up(galleries: dict[str, Gallery]) -> None:
  """Compiles every model and search path, at every batch shape the Batcher makes, before
  /health says ready."""
  for g in galleries.values():
    example = g.item(0)
    for modality, index in g.indexes.items():
      for n in g.retriever.buckets(MAX_BATCH):
        if other_modality(modality) == 'trajectory':
          z = g.retriever.embed_trajectories(
            np.repeat(np.asarray(example['trajectory'])[None], n, 0)
          )
        else:
          z = g.retriever.embed_images(
            np.repeat(np.asarray(example['image'])[None], n, 0),
            np.repeat(np.asarray(example['box'])[None], n, 0),
          )
        index.search(z, min(max(10, g.reranker.candidates if g.reranker else 0), g.size))
    if g.reranker is not None:  # Every pair count a batch of 1 to MAX_BATCH queries makes.
      r = g.reranker
      pairs = {n * min(r.candidates, g.size) for n in range(1, MAX_BATCH + 1)}
      for size in sorted({parallel.bucket(p, r.mesh.size, r.batch_size) for p in pairs}):
        r.score(
          np.repeat(np.asarray(example['trajectory'], np.float32)[None], size, 0),
          np.repeat(np.asarray(example['image'])[None], size, 0),
          np.repeat(np.asarray(example['box'], np.float32)[None], size, 0),
        )
