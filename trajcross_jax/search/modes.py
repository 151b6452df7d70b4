"""The search stages as modes of the entry point: embed, index, search, from a config.

Each reads what the one before wrote: embed writes an embedding directory (gallery.py), index
an index inside it (index.py), search reads the index and the checkpoint (query.py).
"""

from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from etils import epath

from trajcross_jax import parallel, plots
from trajcross_jax.data import pipeline
from trajcross_jax.rerank.reranker import Reranker
from trajcross_jax.retriever import Retriever
from trajcross_jax.search import gallery, query
from trajcross_jax.search import index as index_lib

# The model's inputs and what names each item in the gallery's metadata.
GALLERY_FEATURES = pipeline.MODEL_FEATURES + ('source', 'ped_id', 'track_id', 'start_frame')


def embeddings_dir(config: ml_collections.ConfigDict, workdir: str) -> epath.Path:
  """embed.dir, or WORKDIR/galleries/<dataset config>-<split>."""
  if config.embed.dir:
    return epath.Path(config.embed.dir)
  name = pipeline.get_builder(config.data).builder_config.name
  return epath.Path(workdir) / 'galleries' / f'{name}-{config.embed.split}'


def embed(config: ml_collections.ConfigDict, workdir: str) -> epath.Path:
  """--mode=embed: this process's shards of the gallery (config.embed), resumable."""
  builder = parallel.chief_first(pipeline.prepare, config.data)
  retriever = Retriever.load(workdir, config.eval.step, config, batch_size=config.embed.batch_size)
  source = _gallery_source(builder, config)
  out = embeddings_dir(config, workdir)
  manifest = gallery.make_manifest(
    retriever,
    dataset=builder.info.full_name,
    dataset_dir=str(builder.data_dir),
    split=config.embed.split,
    num_items=len(source),
    shard_size=config.embed.shard_size,
    dtype=config.embed.dtype,
    modalities=tuple(config.embed.modalities),
  )
  written = gallery.embed(
    retriever,
    source,
    out,
    manifest,
    jax.process_index(),
    jax.process_count(),
    progress=parallel.is_chief(),
  )
  # Every process says what it wrote (only process 0 logs at INFO).
  total = manifest['num_shards']
  print(f'process {jax.process_index()}: embedded shards {written} of {total} into {out}')
  return out


def _gallery_source(builder, config: ml_collections.ConfigDict) -> pipeline.Source:
  """The gallery split, streamed (memory stays flat at any size), with its metadata."""
  return pipeline.run_split(
    builder, config.embed.split, config.data, in_memory=False, features=GALLERY_FEATURES
  )


def index(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """--mode=index: an index of config.index.modality over the embedding directory."""
  directory = epath.Path(config.index.dir) if config.index.dir else embeddings_dir(config, workdir)
  record = index_lib.build(
    directory,
    config.index.modality,
    config.index.kind,
    factory=config.index.factory,
    max_memory_mb=config.index.max_memory_mb,
    num_queries=config.index.num_queries,
    target_recall=config.index.target_recall,
    refine=config.index.refine,
  )
  logging.info(
    'Index %s of %d %s embeddings: %s, built in %.1f s, %.1f MB, recall@10 %.3f',
    record['kind'],
    record['num_items'],
    record['modality'],
    record['factory'] or 'exact',
    record['build_s'],
    record['bytes'] / 1e6,
    record['recall_at_10'],
  )
  return record


def search(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]]:
  """--mode=search: top-k for each query; results.json, results.csv, results.png."""
  s = config.search
  directory = epath.Path(config.index.dir) if config.index.dir else embeddings_dir(config, workdir)
  path = (
    epath.Path(s.index)
    if s.index
    else index_lib.index_dir(directory, config.index.modality, config.index.kind)
  )
  idx = index_lib.Index.load(path)
  retriever = Retriever.load(workdir, config.eval.step, config, batch_size=config.eval.batch_size)
  manifest = gallery.read_manifest(idx.embeddings_dir)
  if config.rerank.enabled:  # The second stage: the re-ranker trained beside the checkpoint.
    reranker = Reranker.load(workdir, retriever.params_hash)
    searcher = query.Searcher(retriever, idx, reranker, query.dataset_source(manifest))
  else:
    searcher = query.Searcher(retriever, idx)
  if s.queries:
    if searcher.query_modality == 'trajectory':
      queries = query.read_trajectory_queries(s.queries, retriever.window_length)
    else:
      queries = query.read_image_queries(s.queries)
  else:
    queries = query.split_queries(
      manifest, s.split or manifest['split'], s.ids, searcher.query_modality
    )
  results = searcher.results(queries, s.k)
  out = epath.Path(s.out) if s.out else epath.Path(workdir) / 'search'
  files = query.write_results(out, results)
  if s.grid:
    files.append(out / 'results.png')
    plots.search_grid(grid_rows(queries, results, manifest), files[-1])
  logging.info(
    'Searched %d queries (k=%d); wrote %s', len(queries), s.k, ', '.join(map(str, files))
  )
  return results


def grid_rows(queries: query.Queries, results, manifest) -> list[dict[str, Any]]:
  """What search_grid draws: each query, and each hit with its gallery item."""
  source = query.dataset_source(manifest)
  rows = []
  for q, found in enumerate(results):
    row = {'name': queries.names[q], 'modality': queries.modality}
    if queries.modality == 'trajectory':
      row['trajectory'] = queries.trajectory[q]
    else:
      row['image'], row['box'] = queries.image[q], queries.box[q]
    items = source.__getitems__([hit['id'] for hit in found['results']])
    row['results'] = [
      dict(hit, trajectory=np.asarray(item['trajectory']), image=item['image'], box=item['box'])
      for hit, item in zip(found['results'], items, strict=True)
    ]
    rows.append(row)
  return rows
