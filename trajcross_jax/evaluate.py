"""Evaluation: embed a split with a Retriever, score every pair, and report top@k and ranks.

PROTOCOL.md section 5, with one deliberate departure: a score tied with the query's own pair
counts against the query (rank_i = 1 + #{j != i : s_ij >= s_ii}), where the protocol counts
only strictly higher scores. With float scores ties happen only in degenerate models, and
there the strict count would report a constant-score model as 100% top@1.
"""

import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from etils import epath

from trajcross_jax import parallel
from trajcross_jax.data import pipeline
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import Method
from trajcross_jax.rerank.reranker import Reranker, two_stage_ranks
from trajcross_jax.retriever import Retriever

TOP_K = (1, 5, 10, 15)
RESULTS_FILE = 'eval/results.json'


def ranks(scores: np.ndarray) -> np.ndarray:
  """rank of each row's own column (the diagonal) among that row's scores, 1 = best.

  Ties with the diagonal count against it, and so does any NaN: a score not strictly below
  the query's own is ranked above it.
  """
  scores = np.asarray(scores)
  own = np.diagonal(scores)[:, None]
  return (~(scores < own)).sum(axis=1)  # The diagonal itself counts once: rank >= 1.


def rank_metrics(r: np.ndarray, ks=TOP_K) -> dict[str, float]:
  """top@k in percent, mean and median rank, and MRR, from 1-based ranks."""
  out = {f'top@{k}': float(100.0 * np.mean(r <= k)) for k in ks}
  out.update(
    mean_rank=float(np.mean(r)), median_rank=float(np.median(r)), mrr=float(np.mean(1.0 / r))
  )
  return out


def near_duplicates(trajectories: np.ndarray, threshold: float, chunk: int = 256) -> np.ndarray:
  """Whether each trajectory has another within `threshold` mean point-wise distance (metres)."""
  t = np.asarray(trajectories, np.float64)
  n = len(t)
  has = np.zeros(n, bool)
  for start in range(0, n, chunk):
    d = np.linalg.norm(t[start : start + chunk, None] - t[None], axis=-1).mean(axis=-1)
    d[np.arange(len(d)), np.arange(start, start + len(d))] = np.inf  # Not itself.
    has[start : start + chunk] = (d < threshold).any(axis=1)
  return has


def retrieval_metrics(
  scores: np.ndarray, near_dup: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
  """Both directions' metrics from a (trajectory, image) score matrix."""
  return {
    name: direction_metrics(ranks(s), near_dup)
    for name, s in (('traj2img', scores), ('img2traj', scores.T))
  }


def direction_metrics(r: np.ndarray, near_dup: np.ndarray | None = None) -> dict[str, float]:
  """One direction's metrics from its 1-based ranks, with top@1 on and off near-duplicates."""
  results = rank_metrics(r)
  if near_dup is not None:
    for label, sel in (('near_dup', near_dup), ('no_near_dup', ~near_dup)):
      results[f'top@1_{label}'] = float(100.0 * np.mean(r[sel] <= 1)) if sel.any() else None
  return results


def rerank_candidates(
  reranker: Reranker,
  scores: np.ndarray,
  data: dict[str, np.ndarray],
  direction: str,
  chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray, float]:
  """One direction's second stage over a split.

  Args:
    reranker: the cross-encoder.
    scores: (Q, N) the bi-encoder's scores of each query against the whole split.
    data: the split's 'trajectory', 'image' and 'box'.
    direction: 'traj2img' (trajectory queries) or 'img2traj' (image queries).
    chunk: queries scored per call.

  Returns:
    (Q, K) the bi-encoder's top K ids, (Q, K) the cross-encoder's scores of them, and the
    seconds the cross-encoder took.
  """
  k = min(reranker.candidates, scores.shape[1])
  candidates = np.asarray(jax.lax.top_k(jnp.asarray(scores), k)[1])
  cross = np.zeros(candidates.shape, np.float32)
  t0 = time.perf_counter()
  for start in range(0, len(scores), chunk):
    q, c = slice(start, start + chunk), candidates[start : start + chunk]
    if direction == 'traj2img':
      cross[q] = reranker.score_trajectory_queries(
        data['trajectory'][q], data['image'][c], data['box'][c]
      )
    else:
      cross[q] = reranker.score_image_queries(
        data['image'][q], data['box'][q], data['trajectory'][c]
      )
  return candidates, cross, time.perf_counter() - t0


def reranked_metrics(
  reranker: Reranker,
  z_t: np.ndarray,
  z_i: np.ndarray,
  data: dict[str, np.ndarray],
  near_dup: np.ndarray,
  chunk: int = 256,
) -> dict[str, Any]:
  """Both directions' metrics of the two stages: the bi-encoder's top candidates of the whole
  split, re-ordered by the cross-encoder; with the re-ranking's cost per query."""
  n = len(z_t)
  scores = np.asarray(jnp.asarray(z_t) @ jnp.asarray(z_i).T)
  results: dict[str, Any] = {'candidates': min(reranker.candidates, n)}
  for name, s in (('traj2img', scores), ('img2traj', scores.T)):
    candidates, cross, seconds = rerank_candidates(reranker, s, data, name, chunk)
    head = reranker.combined(cross, np.take_along_axis(s, candidates, axis=1))
    r = two_stage_ranks(ranks(s), candidates, head, np.arange(n))
    results[name] = dict(direction_metrics(r, near_dup), rerank_ms_per_query=1e3 * seconds / n)
  return results


def embed_split(
  retriever: Retriever, source: pipeline.Source, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
  """Embeds every example of a split once, on this process's devices. Returns (z_traj, z_img)."""
  zt, zi = [], []
  for start in range(0, len(source), chunk):
    batch = source.get_batch(np.arange(start, min(start + chunk, len(source))))
    zt.append(retriever.embed_trajectories(batch['trajectory']))
    zi.append(retriever.embed_images(batch['image'], batch['box']))
  return np.concatenate(zt), np.concatenate(zi)


def evaluate_embeddings(z_t: np.ndarray, z_i: np.ndarray, near_dup: np.ndarray) -> dict[str, Any]:
  """Every metric of PROTOCOL.md section 5 from a split's embeddings and which of its queries
  have a near-duplicate (near_duplicates of its trajectories)."""
  return score_metrics(np.asarray(jnp.asarray(z_t) @ jnp.asarray(z_i).T), near_dup)


def score_metrics(scores: np.ndarray, near_dup: np.ndarray) -> dict[str, Any]:
  """Every metric of PROTOCOL.md section 5 from a split's (trajectory, image) score matrix,
  whatever made the scores (a model's embeddings, or render_reference.py)."""
  results = {'num_test': len(scores), 'near_dup_fraction': float(near_dup.mean())}
  results.update(retrieval_metrics(scores, near_dup))
  return results


def evaluate_params(
  method: Method,
  params: Any,
  extra: Any,
  config: ml_collections.ConfigDict,
  normalisation: Normalisation,
  source: pipeline.Source,
  mesh: jax.sharding.Mesh,
) -> dict[str, Any]:
  """Every metric on `source` of parameters in memory (training's own, replicated on `mesh`).

  The same `method` object each time reuses its compiled embedding functions."""
  retriever = Retriever(
    method=method,
    params=params,
    extra=extra,
    config=config,
    normalisation=normalisation,
    workdir='',
    step=-1,
    params_hash='',
    batch_size=config.eval.batch_size,
    mesh=mesh,
  )
  z_t, z_i = embed_split(retriever, source)
  trajectories = source.get_batch(np.arange(len(source)))['trajectory']
  near_dup = near_duplicates(trajectories, config.eval.near_duplicate_m)
  return evaluate_embeddings(z_t, z_i, near_dup)


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Restores a checkpoint of `workdir` (the latest, or config.eval.step), writes results.json
  (WORKDIR/eval/results.json, or config.eval.results).

  The checkpoint may be evaluated on any dataset whose windows have its length: the dataset
  `config.data` names, read in the checkpoint's own scene frame or in that dataset's
  (`config.eval.normalisation`, 'train' or 'target'). Every process embeds the split on its own
  devices; process 0 writes the results.
  """
  frame = None  # The checkpoint's own, unless the evaluated dataset's is asked for.
  if config.eval.normalisation == 'target':
    frame = pipeline.normalisation(parallel.chief_first(pipeline.prepare, config.data))
  retriever = Retriever.load(
    workdir, config.eval.step, config, normalisation=frame, batch_size=config.eval.batch_size
  )
  builder = parallel.chief_first(pipeline.prepare, config.data)
  source = pipeline.run_split(builder, config.eval.split, config.data)
  z_t, z_i = embed_split(retriever, source)
  data = source.get_batch(np.arange(len(source)))
  near_dup = near_duplicates(data['trajectory'], config.eval.near_duplicate_m)
  results = {
    'step': retriever.step,
    'split': config.eval.split,
    'dataset': builder.info.full_name,
    'normalisation': {'frame': config.eval.normalisation, **retriever.normalisation.to_json()},
  }
  results.update(evaluate_embeddings(z_t, z_i, near_dup))
  if config.rerank.enabled:
    reranker = Reranker.load(workdir, retriever.params_hash)
    results['reranked'] = reranked_metrics(reranker, z_t, z_i, data, near_dup)
  if parallel.is_chief():
    path = epath.Path(config.eval.results or epath.Path(workdir) / RESULTS_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    logging.info('Wrote %s\n%s', path, format_table(results))
  return results


def format_table(results: dict[str, Any]) -> str:
  """A plain-text table of the headline numbers, both directions."""
  cols = ('top@1', 'top@5', 'top@10', 'mean_rank', 'median_rank', 'mrr')
  what = f'step {results["step"]}' if 'step' in results else results.get('method', '?')
  lines = [
    f'{what}, {results["num_test"]} {results.get("split", "test")} pairs of '
    f'{results.get("dataset", "?")}',
    'direction ' + ' '.join(f'{c:>11}' for c in cols),
  ]
  for name in ('traj2img', 'img2traj'):
    lines.append(f'{name:9} ' + ' '.join(f'{results[name][c]:11.3f}' for c in cols))
  if 'reranked' in results:
    lines.append(f"re-ranked (the bi-encoder's top {results['reranked']['candidates']}):")
    for name in ('traj2img', 'img2traj'):
      row = results['reranked'][name]
      lines.append(f'{name:9} ' + ' '.join(f'{row[c]:11.3f}' for c in cols))
  return '\n'.join(lines)
