"""Search at gallery scale: embedding rate, index build, queries/s, latency, recall, memory.

  python -m benchmarks.search_speed [--workdir W] [--sizes 100000,1000000]
  python -m benchmarks.search_speed --gallery_source=walks --sizes 10000000 --chunk 50000 \
    --gallery_dtype float16 --directions img2traj --nocurve        (10M on a 24 GB machine)

For each gallery size N (each in its own process, so that peak memory is that size's): builds
the synthetic dataset with a test split of N pairs, embeds it with the checkpoint in --workdir
(both modalities, shards in --gallery_dtype), then for each direction (trajectory queries against
the image index, and the reverse) measures our exact search (float32 and float16 storage), FAISS
IndexFlatIP (the exact peer) and approximate FAISS indexes (the one index.choose_factory picks
under --max_memory_mb, and others for the recall / speed curve; a lossy one alone and with its
candidates re-scored, as --mode=index builds it): build seconds, bytes, queries/s
at batch 1 and at batch 1,000, p50 / p99 latency at batch 1, recall@10 against exact search on
1,000 held-out queries (the other modality's embeddings of random gallery items), and the peak
resident memory of the size's process. Each index is built, measured and freed in turn, with one
direction's gallery in memory at a time. With --gallery_source=walks the pairs are random walks
drawn and embedded in chunks instead (no dataset to build; the galleries wait on disk).

Each size's measurement is kept in --runs_dir (result-N[-DIRECTIONS].json, with its command), so
a stopped run goes on; benchmarks/results/search_speed.{json,md,png} report every size there,
and keep the sizes and directions of the report already written that --runs_dir lacks.
"""

import functools
import json
import math
import os
import pathlib
import resource
import sys
import time
from collections.abc import Callable

import numpy as np
import tqdm
from absl import app, flags, logging

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / 'benchmarks' / 'results'

_WORKDIR = flags.DEFINE_string(
  'workdir', str(REPO / 'runs' / 'generalisation' / 'univ_model'), 'A configs/default.py run.'
)
_SIZES = flags.DEFINE_list('sizes', ['100000', '1000000'], 'Gallery sizes (pairs).')
_RUNS_DIR = flags.DEFINE_string('runs_dir', str(REPO / 'runs' / 'search_speed'), 'Work root.')
_MAX_MEMORY_MB = flags.DEFINE_float('max_memory_mb', 4096, 'Approximate index memory budget.')
_ONE_SIZE = flags.DEFINE_integer('one_size', 0, 'Internal: measure this size in this process.')
_SINGLE = flags.DEFINE_integer('single_queries', 200, 'Queries timed one at a time.')
_BATCH_REPEATS = flags.DEFINE_integer(
  'batch_repeats', 5, 'Batches of 1,000 timed per index; queries/s is from their median.'
)
_REPORT_ONLY = flags.DEFINE_bool('report_only', False, 'Only rewrite the results files.')
_CURVE = flags.DEFINE_bool(
  'curve', True, 'Also IVF-Flat and IVF-PQ points (k-means training: minutes per index at 1M).'
)
_SOURCE = flags.DEFINE_enum(
  'gallery_source',
  'synthetic',
  ['synthetic', 'walks'],
  "synthetic: the tfds synthetic config's test split, embedded into shards; walks: random-walk "
  'pairs drawn on the device (benchmarks/walks.py), for a short GPU lease.',
)
_CHUNK = flags.DEFINE_integer('chunk', 65536, 'Pairs drawn and embedded per call (walks).')
_APPROXIMATE = flags.DEFINE_bool('approximate', True, 'Also the approximate FAISS indexes.')
_FAISS_FLAT = flags.DEFINE_bool('faiss_flat', True, 'Also FAISS IndexFlatIP (the exact peer).')
_RESULTS = flags.DEFINE_string('results_dir', str(RESULTS), 'Where the results files go.')
_DIRECTIONS = flags.DEFINE_multi_enum(
  'directions', ['traj2img', 'img2traj'], ['traj2img', 'img2traj'], 'Directions measured.'
)
_DTYPE = flags.DEFINE_enum(
  'gallery_dtype',
  'float32',
  ['float32', 'float16'],
  "The gallery's stored embeddings (float16: half the memory; then ours is exact_float16).",
)
_BATCH = 1000
# What measured the result files written before each file recorded its own command.
_LEGACY_COMMAND = (
  'python -m benchmarks.search_speed --sizes 100000 (with the IVF curve points), then '
  '--sizes 100000,1000000 --nocurve (1M: the chosen approximate index only)'
)
_RECALL_QUERIES = 1000
RATE_CHUNKS = 4  # Chunks a kept walk gallery's embedding rate is timed on (after one compiling).


DIRECTIONS = {'traj2img': ('image', 'trajectory'), 'img2traj': ('trajectory', 'image')}


def measure_size(n: int) -> dict:
  """Everything for one gallery size, in this process."""
  rng = np.random.default_rng(0)
  picks = np.sort(rng.choice(n, _RECALL_QUERIES, replace=False))
  directions = {d: DIRECTIONS[d] for d in _DIRECTIONS.value}
  if _SOURCE.value == 'walks':
    galleries, queries, build = walk_gallery(n, directions, picks)
  else:
    embeddings, build = synthetic_gallery(n)
    queries = {m: np.ascontiguousarray(x[picks], np.float32) for m, x in embeddings.items()}
    galleries = {m: functools.partial(embeddings.pop, m) for m in list(embeddings)}
  rows = []
  for direction, (indexed, asking) in directions.items():
    # One gallery in memory at a time (10M float16 vectors are 5 GB, and FAISS flat holds a
    # float32 copy): the walks' galleries wait on disk.
    x = galleries.pop(indexed)()
    rows += measure_direction(n, direction, x, queries[asking])
    del x
  from benchmarks import machine

  # Each size's own machine: sizes are measured in different sessions, on different CPUs.
  return {'gallery_size': n, **build, 'machine': machine.describe(), 'rows': rows}


def measure_direction(n: int, direction: str, x: np.ndarray, queries: np.ndarray) -> list[dict]:
  """Each index over `x`, built, measured and freed in turn (peak memory: the gallery and one
  index). Ours first: its ids are the truth for every recall."""
  import faiss

  from trajcross_jax.search import index as index_lib

  ours = 'exact' if x.dtype == np.float32 else f'exact_{x.dtype}'
  builders = {ours: lambda: index_lib.ExactIndex.from_array(x)}
  if x.dtype == np.float32:
    builders['exact_float16'] = lambda: index_lib.ExactIndex.from_array(x.astype(np.float16))
  if _FAISS_FLAT.value:
    builders['faiss_flat'] = lambda: _faiss_flat(faiss, x)
  if TorchFlat.available():
    builders['torch_flat'] = lambda: TorchFlat(x)
  chosen = index_lib.choose_factory(n, x.shape[1], int(_MAX_MEMORY_MB.value * 2**20))
  nlist = index_lib._nlist(n)
  # The chosen index, and two more points on the recall / speed curve. (OPQ's rotation took
  # 70 s to train at 20,000 vectors here, so it is left to choose_factory's tighter budgets.)
  factories = dict.fromkeys(
    [chosen, f'IVF{nlist},Flat', f'IVF{nlist},PQ32'] if _CURVE.value else [chosen]
  )
  truth = None
  rows = []

  def add_row(engine, name: str, build_s: float, info: dict | None, chosen: bool) -> None:
    row = measure_engine(engine, queries, truth)
    row.update(
      gallery_size=n,
      direction=direction,
      index=name,
      chosen=chosen,
      build_s=build_s,
      bytes=_bytes(faiss, engine),
      search_parameter=info and info['search_parameter'],
      search_value=info and info['search_value'],
      refine=info and info.get('refine', 0),
      peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    )
    logging.info('%s', row)
    rows.append(row)

  for name in [*builders, *(f'faiss:{f}' for f in factories if _APPROXIMATE.value)]:
    start = time.perf_counter()
    factory = name[6:] if name.startswith('faiss:') else None
    if factory:
      engine, info = index_lib.build_faiss(x, queries, factory, 0.95, truth=truth)
      build_s = info['build_s']
    else:
      engine, info = builders[name](), None
      build_s = time.perf_counter() - start
    if truth is None:
      truth = _search(engine, queries)
    refine = factory and index_lib.lossy(factory)
    # A lossy index is measured alone and then re-scoring its candidates with the stored
    # vectors, as --mode=index builds it by default (the chosen row); the same lists, re-tuned.
    add_row(engine, name, build_s, info, chosen=factory == chosen and not refine)
    if refine:
      refined = index_lib.Refined(engine, x, index_lib.REFINE)
      info = {**info, 'refine': index_lib.REFINE}
      info.update(index_lib.tune(refined, factory, queries, truth, 0.95))
      add_row(refined, f'{name}+refine{index_lib.REFINE}', build_s, info, factory == chosen)
    del engine
  return rows


def synthetic_gallery(n: int) -> tuple[dict[str, np.ndarray], dict]:
  """The synthetic dataset's test split of n pairs, embedded into shards (the user's path)."""
  from configs import default
  from trajcross_jax.data import builder as builder_lib
  from trajcross_jax.retriever import Retriever
  from trajcross_jax.search import gallery, modes

  runs = pathlib.Path(_RUNS_DIR.value)
  data_dir = runs / 'tfds'
  # About 27 windows of 20 points per simulated walker: enough walkers for N test windows.
  num_tracks = max(500, math.ceil(n / 20))
  build = builder_lib.make_builder(
    'synthetic', data_dir, train_size=1, test_size=n, num_tracks=num_tracks
  )
  start = time.perf_counter()
  build.download_and_prepare()
  dataset_s = time.perf_counter() - start

  config = default.get_config()
  retriever = Retriever.load(_WORKDIR.value, config=config, batch_size=1024)
  source_all = build.as_data_source('test')
  embed_rate = embedding_rates(retriever, source_all)

  out = runs / (f'gallery-{n}' + ('' if _DTYPE.value == 'float32' else f'-{_DTYPE.value}'))
  source = modes.pipeline.load_split(build, 'test', False, modes.GALLERY_FEATURES)
  manifest = gallery.make_manifest(
    retriever,
    build.info.full_name,
    str(build.data_dir),
    'test',
    n,
    100_000,
    _DTYPE.value,
    ('trajectory', 'image'),
  )
  start = time.perf_counter()
  gallery.embed(retriever, source, out, manifest)
  embed_s = time.perf_counter() - start
  embeddings = {m: gallery.load_embeddings(out, m)[0] for m in ('trajectory', 'image')}
  return embeddings, {
    'gallery_dtype': _DTYPE.value,
    'dataset_build_s': dataset_s,
    'embed_s': embed_s,
    'embed_items_per_s': embed_rate,
  }


def walk_gallery(
  n: int, directions: dict[str, tuple[str, str]], picks: np.ndarray
) -> tuple[dict[str, Callable[[], np.ndarray]], dict[str, np.ndarray], dict]:
  """n random-walk pairs (benchmarks/walks.py) drawn on the device and embedded in chunks.

  No dataset and no shards: for a machine where building the synthetic dataset at n would take
  longer than the measurement (a GPU lease, or 10M pairs on 2 cores). Only the indexed
  modalities of `directions` are embedded whole (in --gallery_dtype), into .npy files in
  --runs_dir/walks-N/; the asking modality only at `picks`, the queries. Returns (a loader of
  each gallery, queries, build record); embedding rates exclude the first chunk (compiling).
  """
  from benchmarks import walks
  from configs import default
  from trajcross_jax.retriever import IMAGE_SIZE, Retriever

  chunk = _CHUNK.value
  if n % chunk:
    raise app.UsageError(f'--sizes must be multiples of --chunk ({chunk}) with walks')
  retriever = Retriever.load(_WORKDIR.value, config=default.get_config(), batch_size=chunk)
  whole = {indexed for indexed, _ in directions.values()}
  asked = {asking for _, asking in directions.values()}
  out = pathlib.Path(_RUNS_DIR.value) / f'walks-{n}'
  out.mkdir(parents=True, exist_ok=True)
  # Written a chunk at a time through a plain file (a memory map's pages would count in the
  # resident memory that the rows report), under a temporary name until whole. A whole file
  # from a stopped run is kept: its modality's rate is then timed on RATE_CHUNKS chunks only.
  paths = {m: out / f'{m}-{_DTYPE.value}.npy' for m in whole}
  kept = {m for m, path in paths.items() if path.exists()}
  header = {'descr': np.dtype(_DTYPE.value).str, 'fortran_order': False}
  files = {m: open(f'{paths[m]}.partial', 'wb') for m in whole - kept}  # noqa: SIM115 (closed below)
  for f in files.values():
    np.lib.format.write_array_header_2_0(f, {**header, 'shape': (n, retriever.embedding_dim)})
  queries = {m: [] for m in asked}
  embed = {
    'trajectory': lambda batch, rows: retriever.embed_trajectories(batch['trajectory'][rows]),
    'image': lambda batch, rows: retriever.embed_images(batch['image'][rows], batch['box'][rows]),
  }
  seconds = {'draw': 0.0, 'trajectory': 0.0, 'image': 0.0}
  timed = {'trajectory': 0.0, 'image': 0.0}
  for i in tqdm.trange(n // chunk, desc=f'walks {n:,}', unit='chunk'):
    t0 = time.perf_counter()
    batch = walks.random_batch(chunk, IMAGE_SIZE, seed=i)
    seconds['draw'] += time.perf_counter() - t0
    for m in whole:
      if m in kept and i > RATE_CHUNKS:
        continue
      t0 = time.perf_counter()
      z = np.asarray(embed[m](batch, slice(None)), _DTYPE.value)
      spent = time.perf_counter() - t0
      if m in files:
        files[m].write(z.tobytes())
      seconds[m] += spent
      timed[m] += spent if i else 0.0
    here = picks[(picks >= i * chunk) & (picks < (i + 1) * chunk)] - i * chunk
    for m in asked:
      if len(here):
        queries[m].append(np.asarray(embed[m](batch, here), np.float32))
  for m, f in files.items():
    f.close()
    os.replace(f'{paths[m]}.partial', paths[m])
  timed_chunks = {m: min(n // chunk, RATE_CHUNKS + 1) if m in kept else n // chunk for m in whole}
  rates = {m: (timed_chunks[m] - 1) * chunk / timed[m] for m in whole if timed_chunks[m] > 1}
  return (
    {m: functools.partial(np.load, path) for m, path in paths.items()},
    {m: np.concatenate(q) for m, q in queries.items()},
    {
      'gallery_source': 'walks',
      'gallery_dtype': _DTYPE.value,
      'directions': list(directions),
      'dataset_build_s': seconds['draw'],
      'embed_s': sum(seconds[m] for m in whole - kept),
      'kept_galleries': sorted(kept),
      'embed_items_per_s': rates,
    },
  )


class TorchFlat:
  """Exact search in PyTorch on a GPU (the peer of ExactIndex there): blocked matmul + top-k."""

  BLOCK = 1 << 20

  def __init__(self, x: np.ndarray):
    import torch

    self.torch = torch
    self.gallery = torch.from_numpy(np.ascontiguousarray(x, np.float32)).cuda()
    torch.cuda.synchronize()

  @staticmethod
  def available() -> bool:
    try:
      import torch
    except ImportError:
      return False
    return torch.cuda.is_available()

  @property
  def bytes(self) -> int:
    return self.gallery.numel() * self.gallery.element_size()

  def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    torch = self.torch
    q = torch.from_numpy(np.ascontiguousarray(queries, np.float32)).cuda()
    best_s, best_i = None, None
    for start in range(0, len(self.gallery), self.BLOCK):
      s, i = torch.topk(q @ self.gallery[start : start + self.BLOCK].T, k, dim=1)
      i = i + start
      if best_s is not None:
        s, j = torch.topk(torch.cat([best_s, s], 1), k, dim=1)
        i = torch.gather(torch.cat([best_i, i], 1), 1, j)
      best_s, best_i = s, i
    return best_s.cpu().numpy(), best_i.cpu().numpy()


def embedding_rates(retriever, source, count: int = 8192) -> dict[str, float]:
  """Items/s of each tower alone, after a warm-up batch (compilation excluded)."""
  batch = source.__getitems__(list(range(min(count, len(source)))))
  trajectory = np.stack([e['trajectory'] for e in batch])
  image = np.stack([e['image'] for e in batch])
  box = np.stack([e['box'] for e in batch])
  rates = {}
  for name, fn in (
    ('trajectory', lambda: retriever.embed_trajectories(trajectory)),
    ('image', lambda: retriever.embed_images(image, box)),
  ):
    fn()  # Compile.
    start = time.perf_counter()
    fn()
    rates[name] = len(batch) / (time.perf_counter() - start)
  return rates


def _faiss_flat(faiss, x):
  from trajcross_jax.search import index as index_lib

  index = faiss.IndexFlatIP(x.shape[1])
  index_lib.reserve_flat(index, len(x))
  for i in range(0, len(x), index_lib.ADD_ROWS):  # float32 copies of a slice at a time.
    index.add(np.ascontiguousarray(x[i : i + index_lib.ADD_ROWS], np.float32))
  return index


def _bytes(faiss, engine) -> int:
  from trajcross_jax.search import index as index_lib

  if isinstance(engine, index_lib.Refined):  # Its vectors are the stored shards, on disk.
    return _bytes(faiss, engine.index)
  if isinstance(engine, TorchFlat):
    return engine.bytes
  if hasattr(engine, 'gallery'):
    return int(engine.gallery.size * engine.gallery.dtype.itemsize)
  if isinstance(engine, faiss.IndexFlat):  # Its vectors: serialising would copy them all.
    return int(engine.ntotal * engine.code_size)
  return int(len(faiss.serialize_index(engine)))


def _search(engine, queries: np.ndarray, k: int = 10) -> np.ndarray:
  if hasattr(engine, 'gallery'):
    return engine.search(queries, k)[1]
  return engine.search(np.ascontiguousarray(queries, np.float32), k)[1]


def measure_engine(engine, queries: np.ndarray, truth: np.ndarray) -> dict:
  """Queries/s at batch 1 and 1,000, batch-1 latency percentiles, recall@10."""
  from trajcross_jax.search import index as index_lib

  found = _search(engine, queries)
  recall = index_lib.recall_at_k(found, truth)
  _search(engine, queries[:1])  # Compile / warm the batch-1 path.
  latencies = []
  for q in queries[: _SINGLE.value]:
    start = time.perf_counter()
    _search(engine, q[None])
    latencies.append(time.perf_counter() - start)
  # The median of several batches: on a shared 2-core machine one slow batch (another
  # process's burst) moved a 2-batch mean by 10-20 %, as much as exact and FAISS flat differ.
  batch_times = []
  for _ in range(_BATCH_REPEATS.value):
    start = time.perf_counter()
    _search(engine, queries[:_BATCH])
    batch_times.append(time.perf_counter() - start)
  batch_s = float(np.median(batch_times))
  return {
    'recall_at_10': recall,
    'batch': _BATCH,
    'batch_repeats': _BATCH_REPEATS.value,
    'queries_per_s': _BATCH / batch_s,
    'queries_per_s_batch1': len(latencies) / sum(latencies),
    'p50_ms': 1e3 * float(np.percentile(latencies, 50)),
    'p99_ms': 1e3 * float(np.percentile(latencies, 99)),
  }


def _where(machine: dict) -> str:
  """'2 CPU cores', or the accelerator's name."""
  if machine['jax_backend'] == 'cpu':
    return f'{machine["cpu_count"]} CPU cores'
  return ', '.join(sorted(set(machine['devices'])))


def plot(record: dict, path: pathlib.Path) -> None:
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), squeeze=False)
  for ax, direction in zip(axes[0], ('traj2img', 'img2traj'), strict=True):
    for size in sorted({r['gallery_size'] for r in record['rows']}):
      rows = [
        r for r in record['rows'] if r['gallery_size'] == size and r['direction'] == direction
      ]
      for r in rows:
        marker = 'o' if r['index'].startswith('faiss:') else 's'
        ax.scatter(r['queries_per_s'], r['recall_at_10'], marker=marker)
        ax.annotate(f'{r["index"]} ({size:,})', (r['queries_per_s'], r['recall_at_10']), fontsize=6)
    ax.set_xscale('log')
    ax.set_xlabel(f'queries / s at batch 1,000 ({_where(record["machine"])})')
    ax.set_ylabel('recall@10 against exact search')
    ax.set_title(direction)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def result_path(n: int) -> pathlib.Path:
  """Where one size's measurement goes: one file per size and set of directions."""
  chosen = _DIRECTIONS.value
  directions = '' if len(chosen) == len(DIRECTIONS) else '-' + '-'.join(chosen)
  return pathlib.Path(_RUNS_DIR.value) / f'result-{n}{directions}.json'


def main(argv):
  del argv
  command = ' '.join(['python -m benchmarks.search_speed', *sys.argv[1:]])
  if _ONE_SIZE.value:
    result = measure_size(_ONE_SIZE.value)
    result_path(_ONE_SIZE.value).write_text(json.dumps(result, indent=2))
    return
  from benchmarks import machine, report

  runs = pathlib.Path(_RUNS_DIR.value)
  runs.mkdir(parents=True, exist_ok=True)
  for n in [] if _REPORT_ONLY.value else [int(s) for s in _SIZES.value]:
    if result_path(n).exists():  # Measured before: a stopped run goes on.
      continue
    cmd = [sys.executable, '-m', 'benchmarks.search_speed', f'--one_size={n}']
    cmd += [f'--workdir={_WORKDIR.value}', f'--runs_dir={_RUNS_DIR.value}']
    cmd += [f'--max_memory_mb={_MAX_MEMORY_MB.value}', f'--single_queries={_SINGLE.value}']
    cmd += [f'--curve={_CURVE.value}', f'--approximate={_APPROXIMATE.value}']
    cmd += [f'--gallery_source={_SOURCE.value}', f'--chunk={_CHUNK.value}']
    cmd += [f'--faiss_flat={_FAISS_FLAT.value}', f'--gallery_dtype={_DTYPE.value}']
    cmd += [f'--directions={d}' for d in _DIRECTIONS.value]
    machine.run(cmd)
    result = json.loads(result_path(n).read_text())
    result_path(n).write_text(json.dumps({**result, 'command': command}, indent=2))
  # The report covers every size measured in --runs_dir, by whichever commands measured them,
  # and the committed report's other sizes (runs/ is not kept from one session to the next).
  results = [json.loads(f.read_text()) for f in runs.glob('result-*.json')]
  results += report.committed_search_results(
    pathlib.Path(_RESULTS.value) / 'search_speed.json', results
  )
  results.sort(key=lambda r: (r['gallery_size'], r.get('directions', [])))
  record = {
    'commands': sorted({r.get('command', _LEGACY_COMMAND) for r in results}),
    'model': f'{_WORKDIR.value} (configs/default.py)',
    'machine': machine.describe(),
    'embed_items_per_s': _rates_by_size(results),
    'builds': [{k: v for k, v in r.items() if k != 'rows'} for r in results],
    'rows': [
      {**row, 'gallery_source': r.get('gallery_source', 'synthetic')}
      for r in results
      for row in r['rows']
    ],
  }
  out = pathlib.Path(_RESULTS.value)
  out.mkdir(parents=True, exist_ok=True)
  (out / 'search_speed.json').write_text(json.dumps(record, indent=2) + '\n')
  (out / 'search_speed.md').write_text(table(record))
  plot(record, out / 'search_speed.png')


def _rates_by_size(results: list[dict]) -> dict[int, dict[str, float]]:
  """Embedding items/s per gallery size and modality, over every result file of the size."""
  rates = {}
  for r in results:
    rates.setdefault(r['gallery_size'], {}).update(r['embed_items_per_s'])
  return rates


def table(record: dict) -> str:
  """The measurements as markdown: one row per (size, direction, index)."""
  lines = [
    'Commands: ' + '; '.join(f'`{c}`' for c in record['commands']),
    '',
    f'Model: {record["model"]}.',
    '',
    '| gallery | direction | index | recall@10 | queries/s, batch 1,000 | queries/s, batch 1 '
    '| p50 / p99 ms, batch 1 | build s | MB | peak RSS GB |',
    '| ---: | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
  ]
  for r in record['rows']:
    name = r['index'] + (' (chosen)' if r.get('chosen') else '')
    lines.append(
      f'| {r["gallery_size"]:,} {r["gallery_source"]} | {r["direction"]} | {name} '
      f'| {r["recall_at_10"]:.3f} '
      f'| {r["queries_per_s"]:,.0f} | {r["queries_per_s_batch1"]:,.0f} '
      f'| {r["p50_ms"]:.2f} / {r["p99_ms"]:.2f} | {r["build_s"]:.1f} | {r["bytes"] / 1e6:,.0f} '
      f'| {r["peak_rss_bytes"] / 1e9:.1f} |'
    )
  lines += [
    '',
    '| gallery | directions | source, stored as | dataset build s | embed s | trajectories/s '
    '| images/s | CPU |',
    '| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |',
  ]
  for b in record['builds']:
    rate = b['embed_items_per_s']
    rates = [f'{rate[m]:,.0f}' if m in rate else '-' for m in ('trajectory', 'image')]
    source = f'{b.get("gallery_source", "synthetic")}, {b.get("gallery_dtype", "float32")}'
    cpu = b.get('machine', {})
    cpu = f'{cpu["cpu_model"]}, {cpu["cpu_simd"]}' if 'cpu_model' in cpu else 'not recorded'
    lines.append(
      f'| {b["gallery_size"]:,} | {", ".join(b.get("directions", DIRECTIONS))} | {source} '
      f'| {b["dataset_build_s"]:.0f} | {b["embed_s"]:.0f} | {" | ".join(rates)} | {cpu} |'
    )
  return '\n'.join(lines) + '\n'


if __name__ == '__main__':
  app.run(main)
