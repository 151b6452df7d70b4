"""--mode=search: queries by trajectory or by image against an index -> top-k ids and scores.

A Searcher pairs a Retriever (the query side's encoder) with an index of the other modality:
trajectories search an image index, images a trajectory index. The index must come from the
same checkpoint as the retriever (its parameter hash), or the scores would mean nothing.

Queries come from a file (trajectories: the `frame ped x y` format, one query per pedestrian,
or a JSON list of point lists; images: a CSV of `file,x_left,y_top,x_right,y_bottom` naming
64 x 64 grey PNGs) or from a split of a dataset. Results go to results.json, results.csv and
results.png (each query beside its k results, scores under each).
"""

import csv
import dataclasses
import io
import json
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from trajcross_jax.data import readers
from trajcross_jax.rerank.reranker import Reranker
from trajcross_jax.retriever import InputError, Retriever, check_boxes, read_png
from trajcross_jax.search import gallery
from trajcross_jax.search.index import Index, SearchIndexError, other_modality


class QueryFileError(ValueError):
  """A query file that does not parse; the message names the file (and line or entry)."""


@dataclasses.dataclass
class Queries:
  """What to search with: trajectories (N, M, 2), or images (N, S, S, 1) with boxes (N, 4)."""

  modality: str
  names: list[str]
  trajectory: np.ndarray | None = None
  image: np.ndarray | None = None
  box: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.names)


@dataclasses.dataclass(eq=False)
class Searcher:
  """An index with the encoder of the queries that search it."""

  retriever: Retriever
  index: Index
  # The second stage (or None): re-orders the index's top reranker.candidates by the
  # cross-encoder, which reads the candidates from `items` (random access to the gallery).
  reranker: Reranker | None = None
  items: Any = None

  def __post_init__(self):
    made_by = self.index.record['gallery']['checkpoint']['params_hash']
    if made_by != self.retriever.params_hash:
      raise SearchIndexError(
        f'the index in {self.index.embeddings_dir} was built from another checkpoint (parameter '
        f'hash {made_by}) than the one given for the queries ({self.retriever.params_hash}, '
        f'step {self.retriever.step} of {self.retriever.workdir})'
      )

  @property
  def query_modality(self) -> str:
    return other_modality(self.index.record['modality'])

  def embed(self, queries: Queries) -> np.ndarray:
    if queries.modality != self.query_modality:
      raise SearchIndexError(
        f'{queries.modality} queries cannot search an index of '
        f'{self.index.record["modality"]}s: use the index of the other modality'
      )
    if queries.modality == 'trajectory':
      return self.retriever.embed_trajectories(queries.trajectory)
    return self.retriever.embed_images(queries.image, queries.box)

  def search(self, queries: Queries, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(scores (N, k), ids (N, k), rerank scores (N, k) or None), best first: each hit's
    bi-encoder score, and with a re-ranker its cross-encoder score (NaN past the re-ranked)."""
    z = self.embed(queries)
    if self.reranker is None:
      return (*self.index.search(z, k), None)
    # At least k (a k past the gallery is the index's error), and the re-ranked head.
    scores, ids = self.index.search(z, max(k, min(self.reranker.candidates, self.index.size)))
    arrays = {'trajectory': queries.trajectory, 'image': queries.image, 'box': queries.box}
    return rerank_hits(self.reranker, queries.modality, arrays, scores, ids, self.items, k)

  def results(self, queries: Queries, k: int) -> list[dict[str, Any]]:
    """Each query's top-k with the gallery metadata of each result."""
    scores, ids, reranked = self.search(queries, k)
    meta = gallery.read_metadata(self.index.embeddings_dir, ids.reshape(-1))
    out = []
    for q, name in enumerate(queries.names):
      hits = []
      for rank in range(k):
        record = dict(meta[q * k + rank])
        record.update(rank=rank + 1, score=float(scores[q, rank]))
        if reranked is not None:
          value = float(reranked[q, rank])
          record['rerank_score'] = value if np.isfinite(value) else None
        hits.append(record)
      out.append({'query': name, 'results': hits})
    return out


def rerank_hits(
  reranker: Reranker,
  modality: str,
  queries: dict[str, np.ndarray | None],
  scores: np.ndarray,
  ids: np.ndarray,
  items: Any,
  k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The second stage over a first stage's (scores, ids) (N, >= k), best first.

  The first reranker.candidates hits of each query are scored by the cross-encoder (against
  their items, read from `items` by id) and re-ordered by that score (plus the re-ranker's
  bi_weight times the bi-encoder's); the rest keep their order. Returns (bi-encoder scores,
  ids, the re-ranked head's scores with NaN past it), cut to k.
  """
  n, c = len(ids), min(reranker.candidates, ids.shape[1])
  head = ids[:, :c]
  found = items.__getitems__([int(i) for i in head.reshape(-1)])
  if modality == 'trajectory':
    images = np.stack([np.asarray(f['image']) for f in found])
    boxes = np.stack([np.asarray(f['box'], np.float32) for f in found])
    cross = reranker.score_trajectory_queries(
      queries['trajectory'], images.reshape(n, c, *images.shape[1:]), boxes.reshape(n, c, 4)
    )
  else:
    trajectories = np.stack([np.asarray(f['trajectory'], np.float32) for f in found])
    cross = reranker.score_image_queries(
      queries['image'], queries['box'], trajectories.reshape(n, c, *trajectories.shape[1:])
    )
  cross = reranker.combined(cross, scores[:, :c])
  order = np.argsort(-cross, axis=1, kind='stable')
  ids = np.concatenate([np.take_along_axis(head, order, 1), ids[:, c:]], axis=1)[:, :k]
  scores = np.concatenate([np.take_along_axis(scores[:, :c], order, 1), scores[:, c:]], 1)[:, :k]
  reranked = np.full(ids.shape, np.nan, np.float32)
  reranked[:, : min(c, k)] = np.take_along_axis(cross, order, 1)[:, :k]
  return scores, ids, reranked


def read_trajectory_queries(path: epath.PathLike, window_length: int) -> Queries:
  """Trajectories from a `frame ped x y` file (one per pedestrian) or a JSON list of point lists."""
  path = epath.Path(path)
  if path.suffix == '.json':
    try:
      data = json.loads(path.read_text())
    except FileNotFoundError:
      raise QueryFileError(f'{path}: no such query file') from None
    except json.JSONDecodeError as e:
      raise QueryFileError(f'{path}:{e.lineno}: not JSON ({e.msg})') from None
    if not isinstance(data, list) or not data:
      raise QueryFileError(f'{path}: expected a non-empty JSON list of trajectories')
    points = []
    for i, t in enumerate(data):
      try:
        array = np.asarray(t, dtype=np.float64)
      except (TypeError, ValueError):
        raise QueryFileError(f'{path}: trajectory {i} is not a list of [x, y] numbers') from None
      if array.shape != (window_length, 2):
        raise QueryFileError(
          f'{path}: trajectory {i} has shape {array.shape}, expected ({window_length}, 2)'
        )
      points.append(array)
    names = [f'{path.name}[{i}]' for i in range(len(points))]
  else:
    try:
      raws = readers.read_text(path)
    except readers.TrackFileError as e:
      raise QueryFileError(str(e)) from None
    points, names = [], []
    for raw in raws:
      if len(raw) != window_length:
        raise QueryFileError(
          f'{raw.where[0]}: pedestrian {raw.track_id} has {len(raw)} points; a query needs '
          f'exactly {window_length}'
        )
      points.append(raw.coords)
      names.append(f'{path.name} ped {raw.track_id}')
  trajectory = np.stack(points)
  bad = ~np.isfinite(trajectory).all(axis=(1, 2))
  if bad.any():
    raise QueryFileError(f'{path}: {names[int(np.flatnonzero(bad)[0])]} has a NaN or infinity')
  return Queries('trajectory', names, trajectory=trajectory)


def read_image_queries(path: epath.PathLike) -> Queries:
  """Images from a CSV `file,x_left,y_top,x_right,y_bottom` (PNG paths relative to the CSV)."""
  path = epath.Path(path)
  try:
    text = path.read_text()
  except FileNotFoundError:
    raise QueryFileError(f'{path}: no such query file') from None
  rows = list(csv.reader(io.StringIO(text)))
  header = [h.strip() for h in rows[0]] if rows else []
  expected = ['file', 'x_left', 'y_top', 'x_right', 'y_bottom']
  if header != expected:
    raise QueryFileError(f'{path}:1: the header must be {",".join(expected)}, got {header}')
  images, boxes, names = [], [], []
  for line, row in enumerate(rows[1:], start=2):
    if not row:
      continue
    if len(row) != 5:
      raise QueryFileError(f'{path}:{line}: expected 5 fields, got {len(row)}')
    try:
      box = [float(v) for v in row[1:]]
    except ValueError:
      raise QueryFileError(f'{path}:{line}: a box corner is not a number: {row[1:]}') from None
    try:
      boxes.append(check_boxes([box])[0])
    except InputError as e:
      raise QueryFileError(f'{path}:{line}: ' + str(e).replace('box 0', 'the box')) from None
    image_path = path.parent / row[0].strip()
    try:
      images.append(read_png(image_path.read_bytes()))
    except FileNotFoundError:
      raise QueryFileError(f'{path}:{line}: no such image {image_path}') from None
    except InputError as e:
      raise QueryFileError(f'{path}:{line}: {image_path}: {e}') from None
    names.append(row[0].strip())
  if not images:
    raise QueryFileError(f'{path}: no query rows')
  return Queries('image', names, image=np.stack(images), box=np.asarray(boxes, np.float32))


def split_queries(manifest: dict[str, Any], split: str, ids, modality: str) -> Queries:
  """Queries taken from a split of the gallery's dataset (by item ids)."""
  source = dataset_source(manifest, split)
  ids = np.asarray(ids, np.int64)
  if len(ids) and (ids.min() < 0 or ids.max() >= len(source)):
    raise QueryFileError(f'query ids must be in [0, {len(source)}) of the {split} split')
  items = source.__getitems__(ids.tolist())
  names = [f'{split}[{i}]' for i in ids]
  if modality == 'trajectory':
    return Queries(modality, names, trajectory=np.stack([e['trajectory'] for e in items]))
  return Queries(
    modality,
    names,
    image=np.stack([e['image'] for e in items]),
    box=np.stack([e['box'] for e in items]),
  )


def dataset_builder(manifest: dict[str, Any]) -> tfds.core.DatasetBuilder:
  """The prepared dataset a gallery was embedded from."""
  return tfds.builder_from_directory(manifest['dataset_dir'])


def dataset_source(manifest: dict[str, Any], split: str | None = None):
  """Random access to the gallery's dataset split (for drawing results, or split queries)."""
  return dataset_builder(manifest).as_data_source(split=split or manifest['split'])


def write_results(out_dir: epath.PathLike, results: list[dict[str, Any]]) -> list[epath.Path]:
  """results.json (everything) and results.csv (one row per hit), written atomically."""
  out_dir = epath.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  gallery.write_atomic(out_dir / 'results.json', json.dumps(results, indent=2).encode())
  buffer = io.StringIO()
  columns = ['query', 'rank', 'id', 'score', 'source', 'ped_id', 'track_id', 'start_frame']
  writer = csv.writer(buffer)
  writer.writerow(columns)
  for query in results:
    for hit in query['results']:
      writer.writerow([query['query']] + [hit.get(c) for c in columns[1:]])
  gallery.write_atomic(out_dir / 'results.csv', buffer.getvalue().encode())
  return [out_dir / 'results.json', out_dir / 'results.csv']
