"""--mode=index: an index over one modality of an embedding directory, exact or approximate.

- 'exact': every gallery vector scored (full float32 products) by a blocked matmul with a running
  top-k, jitted on the device (float16 storage allowed: scores accumulate in float32). Nothing to
  build: the index records what it covers.
- 'faiss': an approximate FAISS index. Its factory string is chosen from the gallery's size under
  a memory budget, in the manner of autofaiss (the most accurate kind that fits: HNSW, then an
  inverted file of full vectors, of float16 vectors, of 8-bit scalar-quantised vectors, then
  OPQ + inverted file + product quantisation; at most MAX_LISTS inverted lists, so that k-means
  stays minutes on a CPU), or given. Its search parameter (nprobe or efSearch) is raised until
  recall@10 against exact search on held-out queries reaches a target (or stops rising). An index
  of lossy codes (8-bit scalars, product codes) re-scores `refine` x k candidates a query with
  the stored embeddings, read from memory maps of the shards (Refined).

Each index lives in EMBEDDINGS/index-<modality>-<kind>/ with index.json (kind, factory, build
seconds, bytes on disk, recall@10, the search parameter, and the gallery's model) and, for
FAISS, index.faiss.
"""

import dataclasses
import functools
import json
import math
import time
from typing import Any

import faiss
import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from trajcross_jax import parallel
from trajcross_jax.search import gallery

KINDS = ('exact', 'faiss')
INDEX_FILE = 'index.json'
FAISS_FILE = 'index.faiss'
# Gallery rows stored per block of the exact search's array.
BLOCK = 65_536
# A step of the exact search scores as many whole blocks as fit a (queries x rows) float32 score
# block of this size: small query batches take few, long steps. One step per block cost a batch-1
# query 5.6 ms on 1M vectors on an H200 (16 steps of a dot and two top-k's), where PyTorch's
# single matmul + top-k took 0.5 ms (benchmarks/search_speed.py).
SCORE_BYTES = 1 << 26
TOPK_CHUNK = 128  # Scores a chunk of chunked_top_k.
MIN_K = 16  # The smallest k the exact search compiles for (a larger k: the next power of two).
RECALL_K = 10
ADD_ROWS = 1 << 20  # Rows given to FAISS per add() call (float32 copies of this many).
# The most inverted lists a chosen index gets. k-means costs (64 nlist) x nlist x d multiply-adds
# an iteration and filling n x nlist x d: at 10M x 256 and 16,384 lists (4 sqrt(n)) that is about
# 90 min of training and 35 min of filling on 2 CPU cores (FAISS k-means ran at 35-40 GFLOPS
# here); 4,096 lists take about 7 + 9 min, for more vectors per list scanned. A factory string
# given in --config.index.factory sets any count.
MAX_LISTS = 4096
# Candidates a lossy index returns per result wanted, re-scored with the stored vectors.
REFINE = 10
# Recall within this of the best any tried search parameter reached counts as reached: when the
# target is out of reach (lossy codes), a larger nprobe past the plateau only costs time.
PLATEAU = 0.002


class SearchIndexError(ValueError):
  """An index that cannot be built or used as asked; the message says why."""


def index_dir(embeddings: epath.PathLike, modality: str, kind: str) -> epath.Path:
  return epath.Path(embeddings) / f'index-{modality}-{kind}'


def other_modality(modality: str) -> str:
  return 'trajectory' if modality == 'image' else 'image'


# ----------------------------------------------------------------------------- exact search


@dataclasses.dataclass(eq=False)
class ExactIndex:
  """Brute force on the device: scores = queries @ gallery.T, top-k by blocks of rows."""

  gallery: jax.Array  # (num_blocks, BLOCK, D), zero rows past the end.
  size: int

  @classmethod
  def from_array(cls, embeddings: np.ndarray, block: int = BLOCK) -> 'ExactIndex':
    n, d = embeddings.shape
    block = min(block, max(n, 1))
    blocks = -(-n // block)
    # Copied to the device a block at a time into one donated array: memory is the gallery
    # and one block besides the caller's array. (A padded copy handed to jnp.asarray peaked at
    # three more copies of the gallery on the CPU: 20 GB for 10M x 256 float16.)
    gallery = jnp.zeros((blocks, block, d), embeddings.dtype)
    for i in range(blocks):
      rows = embeddings[i * block : (i + 1) * block]
      gallery = _put_block(gallery, np.pad(rows, ((0, block - len(rows)), (0, 0))), i)
    return cls(gallery=gallery, size=n)

  def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Q, D) queries -> (scores (Q, k) float32, ids (Q, k) int64), best first."""
    if not 0 < k <= self.size:
      raise SearchIndexError(f'k={k} must be in [1, {self.size}] (the gallery size)')
    # Queries padded to a power of two, k rounded up to one: a service's varying batches and k
    # compile a few shapes only.
    q = len(queries)
    padded = np.zeros((parallel.next_power_of_two(q), queries.shape[1]), np.float32)
    padded[:q] = queries
    kk = min(max(MIN_K, parallel.next_power_of_two(k)), self.size)
    # At most a step's score budget of queries a call: 1,024 queries against 65,536-row blocks
    # made 256 MB of scores a step, and FAISS IndexFlatIP overtook us at 1M on an AVX-512 CPU
    # (0.95x, README "Measured"); with 256 a call the two are level there (0.99-1.20x).
    block = self.gallery.shape[1]
    per_call = min(len(padded), 1 << int(math.log2(max(SCORE_BYTES // (4 * block), 1))))
    group = blocks_per_step(*self.gallery.shape[:2], per_call)
    found = [
      _exact_topk(self.gallery, jnp.asarray(padded[i : i + per_call]), kk, self.size, group)
      for i in range(0, len(padded), per_call)
    ]
    scores = np.concatenate([np.asarray(f[0]) for f in found])
    ids = np.concatenate([np.asarray(f[1], np.int64) for f in found])
    return scores[:q, :k], ids[:q, :k]


@functools.partial(jax.jit, donate_argnums=0)
def _put_block(gallery: jax.Array, rows: jax.Array, i: int | jax.Array) -> jax.Array:
  return jax.lax.dynamic_update_index_in_dim(gallery, rows, i, 0)


def blocks_per_step(blocks: int, block: int, queries: int) -> int:
  """The most blocks (a divisor of `blocks`) whose scores for `queries` fit SCORE_BYTES."""
  return parallel.largest_divisor(blocks, max(SCORE_BYTES // (4 * block * queries), 1))


def chunked_top_k(scores: jax.Array, k: int, chunk: int = TOPK_CHUNK):
  """jax.lax.top_k over the last axis of (Q, N) scores, by chunks: the k chunks with the
  largest maxima hold every one of the k largest scores (a chunk holding one of them has a
  maximum at least that score, and fewer than k chunks can beat it), so only their k x chunk
  scores are ranked. XLA's CPU top_k over whole rows of 65,536 scores took as long as the
  matmul that made them."""
  q, n = scores.shape
  if n % chunk or n // chunk <= k:
    return jax.lax.top_k(scores, k)
  chunks = scores.reshape(q, n // chunk, chunk)
  _, best = jax.lax.top_k(chunks.max(axis=2), k)  # (Q, k) chunk numbers.
  candidates = jnp.take_along_axis(chunks, best[:, :, None], axis=1).reshape(q, k * chunk)
  values, j = jax.lax.top_k(candidates, k)
  return values, jnp.take_along_axis(best, j // chunk, axis=1) * chunk + j % chunk


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _exact_topk(gallery: jax.Array, queries: jax.Array, k: int, size: int, group: int = 1):
  """A running top-k over the gallery, `group` blocks a step (lax.scan): memory is one step's
  scores. Scores are full float32 products (HIGHEST precision): on GPUs the default would round
  the operands to TF32 and reorder near ties, and this search is the truth for recall."""
  blocks, block, d = gallery.shape
  gallery = gallery.reshape(blocks // group, block * group, d)
  blocks, block = blocks // group, block * group
  kb = min(k, block)

  def step(carry, inputs):
    best_s, best_i = carry
    rows, offset = inputs
    s = jnp.dot(
      queries,
      rows.T,
      precision=jax.lax.Precision.HIGHEST,
      preferred_element_type=jnp.float32,
    )
    ids = offset + jnp.arange(block)
    s = jnp.where(ids[None, :] < size, s, -jnp.inf)  # Padding never wins.
    top_s, top_j = chunked_top_k(s, kb)
    merged_s = jnp.concatenate([best_s, top_s], axis=1)
    merged_i = jnp.concatenate([best_i, ids[top_j]], axis=1)
    keep_s, keep_j = jax.lax.top_k(merged_s, k)
    return (keep_s, jnp.take_along_axis(merged_i, keep_j, axis=1)), None

  q = queries.shape[0]
  init = (jnp.full((q, k), -jnp.inf, jnp.float32), jnp.zeros((q, k), jnp.int32))
  offsets = jnp.arange(blocks, dtype=jnp.int32) * block
  (scores, ids), _ = jax.lax.scan(step, init, (gallery, offsets))
  return scores, ids


# ----------------------------------------------------------------------------- FAISS


def estimate_bytes(factory: str, n: int, d: int) -> int:
  """About how much memory a FAISS index of `factory` over n vectors of d floats takes."""
  parts = factory.split(',')
  codes = parts[-1]
  per_vector = 4 * d
  if codes.startswith('PQ'):
    per_vector = int(codes[2:].split('x')[0])
  elif codes.startswith('SQ'):
    per_vector = {'SQfp16': 2 * d, 'SQ8': d}[codes]  # The scalar codes the chooser offers.
  graph = 0
  if factory.startswith('HNSW'):
    graph = n * int(factory[4:].split(',')[0] or 32) * 2 * 4
  lists = 0
  for p in parts:
    if p.startswith('IVF'):
      lists = int(p[3:].split('_')[0]) * d * 4
  return n * (per_vector + 8) + graph + lists


def choose_factory(n: int, d: int, max_bytes: int) -> str:
  """The most accurate FAISS index that fits `max_bytes`, as autofaiss chooses.

  HNSW (graph over full vectors) for galleries up to a few million, then an inverted file
  over full vectors, float16 vectors or 8-bit scalar codes, then OPQ rotation + inverted file
  + product codes of decreasing size. (At 10M x 256 under 4 GB, OPQ128,IVF4096,PQ128 reached
  recall@10 0.81 only at nprobe 1,024, slower than exact search; IVF4096,SQ8 with its
  candidates re-scored reached 0.975-0.992 at nprobe 8: benchmarks/results/search_speed.md.)
  """
  nlist = _nlist(n)
  candidates = []
  if n <= 5_000_000:
    candidates.append('HNSW32')
  if nlist:
    candidates += [f'IVF{nlist},Flat', f'IVF{nlist},SQfp16', f'IVF{nlist},SQ8']
    for m in (128, 64, 32, 16, 8):
      if m <= d and d % m == 0:
        candidates.append(f'OPQ{m},IVF{nlist},PQ{m}')
  for factory in candidates:
    if estimate_bytes(factory, n, d) <= max_bytes:
      return factory
  raise SearchIndexError(
    f'no index of {n} vectors of {d} floats fits {max_bytes / 2**20:.0f} MiB: raise '
    '--config.index.max_memory_mb'
  )


def _nlist(n: int) -> int:
  """Inverted lists: a power of two near 4 sqrt(n), with >= 39 training points each, at most
  MAX_LISTS (0: none)."""
  if n < 39 * 64:
    return 0
  target = 4 * math.sqrt(n)
  nlist = 2 ** round(math.log2(target))
  return int(min(nlist, 2 ** int(math.log2(n // 39)), MAX_LISTS))


def lossy(factory: str) -> bool:
  """Whether a factory's codes misorder near neighbours enough to be worth re-scoring."""
  codes = factory.split(',')[-1]
  return codes.startswith('PQ') or codes in ('SQ8', 'SQ6', 'SQ4')


@dataclasses.dataclass(eq=False)
class Refined:
  """A FAISS index whose `factor` x k candidates per query are re-scored with stored vectors.

  Lossy codes misorder near neighbours: over 10M model embeddings (256-d), IVF4096,SQ8 alone
  stopped at recall@10 0.912 / 0.953 (img->traj / traj->img; more lists scanned added
  nothing), and re-scoring 10 x k candidates reached 0.992 / 0.975 at nprobe 8
  (benchmarks/results/search_speed.md). Re-scoring reads factor x k rows a query, from memory
  maps of the embedding shards, so the index keeps its small memory (FAISS's IndexRefine would
  hold a second copy of every vector in memory: 5 GB for 10M x 256 float16).
  """

  index: Any  # The FAISS index.
  vectors: Any  # (N, D) array or gallery.MappedEmbeddings: rows by an integer id array.
  factor: int

  def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Q, D) float32 -> (scores (Q, k), ids (Q, k) int64), best first; -1 ids past the hits."""
    _, candidates = self.index.search(queries, k * self.factor)
    found = candidates >= 0
    rows = self.vectors[np.where(found, candidates, 0)].astype(np.float32)  # (Q, k f, D)
    scores = np.where(found, np.matmul(rows, queries[:, :, None])[..., 0], -np.inf)
    order = np.argsort(-scores, axis=1, kind='stable')[:, :k]
    ids = np.take_along_axis(candidates, order, axis=1).astype(np.int64)
    return np.take_along_axis(scores, order, axis=1), ids


def _search_parameter(factory: str) -> str | None:
  if factory.startswith('HNSW'):
    return 'efSearch'
  if 'IVF' in factory:
    return 'nprobe'
  return None


def set_search_parameter(index, factory: str, value: int) -> None:
  """Sets nprobe (inverted files) or efSearch (HNSW) on a FAISS index."""
  name = _search_parameter(factory)
  if name is not None:
    faiss.ParameterSpace().set_index_parameter(index, name, value)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = RECALL_K) -> float:
  """Mean over queries of |found top-k & true top-k| / k."""
  hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True)]
  return float(np.mean(hits) / k)


def reserve_flat(index, n: int) -> None:
  """Reserves the whole vector store of a flat index (IndexFlat, or HNSW's storage) for n
  vectors before add(): grown by add() a vector doubles, and the copy holds old and new at once
  (FAISS IndexFlatIP over 10M x 256 peaked at 24 GB and was killed). Other indexes: nothing."""
  flat = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
  if isinstance(flat, faiss.IndexFlatCodes):
    flat.codes.resize((flat.ntotal + n) * flat.code_size)
    flat.codes.resize(flat.ntotal * flat.code_size)  # A vector keeps its capacity.


def skip_polysemous_training(index) -> None:
  """Turns off FAISS's polysemous training of product-quantiser codes (on by default for PQ
  and IVF-PQ indexes): it only renumbers each sub-quantiser's centroids so that Hamming
  distances between codes approximate theirs, for a Hamming pre-filter (`polysemous_ht`) that
  this package never sets. The distances searched are the same either way; the annealing took
  most of an IVF256,PQ8 index's training time (35 s with it, 10 s without, on the same 16,384 x
  32 points, two threads on shared cores)."""
  inner = faiss.downcast_index(index.index if isinstance(index, faiss.IndexPreTransform) else index)
  if hasattr(inner, 'do_polysemous_training'):
    inner.do_polysemous_training = False


def build_faiss(
  embeddings: np.ndarray,
  queries: np.ndarray,
  factory: str,
  target_recall: float,
  seed: int = 0,
  truth: np.ndarray | None = None,
  refine: int = 0,
  vectors: Any = None,
) -> tuple[Any, dict[str, Any]]:
  """Trains and fills a FAISS inner-product index, tuned to `target_recall` on `queries`.

  `embeddings` may be float16 (as a float16 gallery is stored): FAISS is given float32 copies
  of ADD_ROWS rows at a time, so memory is the stored gallery plus the index, not a float32 copy
  of the gallery as well (10 GB at 10M x 256). `truth`: the queries' exact top-RECALL_K ids,
  if the caller has them already; else an exact search over the stored embeddings. `refine`
  > 0: the index returned is Refined, re-scoring with `vectors` (default: `embeddings`).

  Returns (index, info): info holds build_s, the search parameter and its value, recall@10.
  """
  n, d = embeddings.shape
  start = time.perf_counter()
  index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
  skip_polysemous_training(index)
  if not index.is_trained:
    rng = np.random.default_rng(seed)
    # 64 points per inverted list (FAISS asks for >= 39): k-means cost stays a minute at 1M.
    picks = np.sort(rng.choice(n, min(n, 64 * max(_nlist(n), 256)), replace=False))
    index.train(np.ascontiguousarray(embeddings[picks], np.float32))
  reserve_flat(index, n)
  for i in range(0, n, ADD_ROWS):
    index.add(np.ascontiguousarray(embeddings[i : i + ADD_ROWS], np.float32))
  build_s = time.perf_counter() - start
  if truth is None:
    truth = ExactIndex.from_array(embeddings).search(queries, min(RECALL_K, n))[1]
  engine = Refined(index, embeddings if vectors is None else vectors, refine) if refine else index
  info = tune(engine, factory, queries, truth, target_recall)
  return engine, {'build_s': build_s, 'refine': refine, **info}


def tune(engine, factory: str, queries: np.ndarray, truth: np.ndarray, target_recall: float):
  """Raises nprobe / efSearch until recall@10 reaches `target_recall`; if it never does, takes
  the smallest value within PLATEAU of the best recall. Returns the value and its recall."""
  index = engine.index if isinstance(engine, Refined) else engine
  name = _search_parameter(factory)
  queries = np.ascontiguousarray(queries, np.float32)
  tried = []
  for value in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] if name else [None]:
    if value is not None:
      set_search_parameter(index, factory, value)
    tried.append((value, recall_at_k(engine.search(queries, RECALL_K)[1], truth)))
    if tried[-1][1] >= target_recall:
      break
  best = max(recall for _, recall in tried)
  enough = target_recall if best >= target_recall else best - PLATEAU
  value, recall = next(t for t in tried if t[1] >= enough)
  if value is not None:
    set_search_parameter(index, factory, value)
  return {
    'search_parameter': name,
    'search_value': value,
    'recall_at_10': recall,
    'target_met': recall >= target_recall,
  }


# ----------------------------------------------------------------------------- build / load


def build(
  embeddings_dir: epath.PathLike,
  modality: str,
  kind: str,
  factory: str = '',
  max_memory_mb: float = 4096,
  num_queries: int = 1000,
  target_recall: float = 0.95,
  seed: int = 0,
  refine: int = REFINE,
) -> dict[str, Any]:
  """Builds an index of `modality` in an embedding directory and writes its record.

  Held-out queries: the other modality's embeddings of `num_queries` random items (the
  gallery's own modality if the directory holds only one), searched exactly to measure recall.
  A lossy FAISS index re-scores `refine` x k candidates from the shards (0: it does not).
  """
  if kind not in KINDS:
    raise SearchIndexError(f'index kind {kind!r}: must be one of {KINDS}')
  x, manifest = gallery.load_embeddings(embeddings_dir, modality)
  query_modality = other_modality(modality)
  if query_modality not in manifest['modalities']:
    query_modality = modality
  rng = np.random.default_rng(seed)
  picks = np.sort(rng.choice(len(x), min(num_queries, len(x)), replace=False))
  queries = gallery.load_embeddings(embeddings_dir, query_modality)[0][picks].astype(np.float32)
  out = index_dir(embeddings_dir, modality, kind)
  out.mkdir(parents=True, exist_ok=True)
  record = {
    'kind': kind,
    'modality': modality,
    'num_items': int(len(x)),
    'dim': int(x.shape[1]),
    'dtype': str(x.dtype),
    'gallery': gallery.identity(manifest),
    'query_modality': query_modality,
    'num_queries': int(len(picks)),
  }
  if kind == 'exact':
    record.update(
      factory=None,
      build_s=0.0,
      bytes=int(x.nbytes),
      recall_at_10=1.0,
      search_parameter=None,
      search_value=None,
    )
  else:
    factory = factory or choose_factory(len(x), x.shape[1], int(max_memory_mb * 2**20))
    refine = refine if lossy(factory) else 0
    vectors = gallery.MappedEmbeddings(embeddings_dir, modality) if refine else None
    engine, info = build_faiss(
      x, queries, factory, target_recall, seed, refine=refine, vectors=vectors
    )
    index = engine.index if refine else engine
    data = faiss.serialize_index(index).tobytes()
    gallery.write_atomic(out / FAISS_FILE, data)
    record.update(factory=factory, bytes=len(data), **info)
  gallery.write_atomic(out / INDEX_FILE, json.dumps(record, indent=2).encode())
  return record


@dataclasses.dataclass(eq=False)
class Index:
  """A built index, ready to search: exact or FAISS, with its record and embedding dir."""

  record: dict[str, Any]
  embeddings_dir: epath.Path
  engine: Any  # ExactIndex or a faiss index.

  @classmethod
  def load(cls, path: epath.PathLike) -> 'Index':
    path = epath.Path(path)
    if not (path / INDEX_FILE).exists():
      raise SearchIndexError(f'{path} is not an index: it has no {INDEX_FILE} (run --mode=index)')
    record = json.loads((path / INDEX_FILE).read_text())
    embeddings_dir = path.parent
    manifest = gallery.read_manifest(embeddings_dir)
    if gallery.identity(manifest) != record['gallery']:
      raise SearchIndexError(f'{path} was built from another gallery than {embeddings_dir} holds')
    if record['kind'] == 'exact':
      x, _ = gallery.load_embeddings(embeddings_dir, record['modality'])
      engine = ExactIndex.from_array(x)
    else:
      engine = faiss.deserialize_index(np.frombuffer((path / FAISS_FILE).read_bytes(), np.uint8))
      if record['search_parameter']:
        set_search_parameter(engine, record['factory'], record['search_value'])
      if record.get('refine'):
        vectors = gallery.MappedEmbeddings(embeddings_dir, record['modality'])
        engine = Refined(engine, vectors, record['refine'])
    return cls(record=record, embeddings_dir=embeddings_dir, engine=engine)

  @property
  def size(self) -> int:
    return int(self.record['num_items'])

  def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Q, D) -> (scores (Q, k), ids (Q, k)), best first."""
    if not 0 < k <= self.size:
      raise SearchIndexError(f'k={k} must be in [1, {self.size}] (the gallery size)')
    queries = np.ascontiguousarray(queries, np.float32)
    if isinstance(self.engine, ExactIndex | Refined):
      return self.engine.search(queries, k)
    scores, ids = self.engine.search(queries, k)
    return scores, ids.astype(np.int64)
