"""Evaluation: embed the test split, score every pair, and report top@k and ranks.

PROTOCOL.md section 5, with one deliberate departure: a score tied with the query's own pair
counts against the query (rank_i = 1 + #{j != i : s_ij >= s_ii}), where the protocol counts
only strictly higher scores. With float scores ties happen only in degenerate models, and
there the strict count would report a constant-score model as 100% top@1.
"""

import functools
import json
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from etils import epath

from trajcross_jax import checkpoint, parallel
from trajcross_jax.data import pipeline
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import Method, get_method

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
  results = {}
  for name, s in (('traj2img', scores), ('img2traj', scores.T)):
    r = ranks(s)
    results[name] = rank_metrics(r)
    if near_dup is not None:
      for label, sel in (('near_dup', near_dup), ('no_near_dup', ~near_dup)):
        results[name][f'top@1_{label}'] = float(100.0 * np.mean(r[sel] <= 1)) if sel.any() else None
  return results


def embed_split(
  method: Method,
  params,
  extra,
  source: pipeline.Source,
  batch_size: int,
  mesh: jax.sharding.Mesh,
) -> tuple[np.ndarray, np.ndarray]:
  """Embeds every example of a split once, across all devices. Returns (z_traj, z_img)."""
  parallel.check_batch_size(batch_size, mesh, 'eval.batch_size')

  @functools.partial(jax.jit, out_shardings=parallel.replicated(mesh))
  def embed(params, extra, batch):
    z_t = method.embed_trajectories(params, extra, batch['trajectory'])
    z_i = method.embed_images(params, extra, batch['image'], batch['box'])
    return z_t, z_i, batch['mask']

  zt, zi = [], []
  for local in pipeline.eval_batches(source, batch_size, jax.process_index(), jax.process_count()):
    z_t, z_i, mask = jax.device_get(embed(params, extra, parallel.global_batch(local, mesh)))
    keep = mask > 0
    zt.append(z_t[keep])
    zi.append(z_i[keep])
  return np.concatenate(zt), np.concatenate(zi)


def evaluate_state(method, params, extra, source, config, mesh) -> dict[str, Any]:
  """Embeds the test split `source` with the given parameters and computes every metric."""
  z_t, z_i = embed_split(method, params, extra, source, config.eval.batch_size, mesh)
  trajectories = source.get_batch(np.arange(len(source)))['trajectory']
  near_dup = near_duplicates(trajectories, config.eval.near_duplicate_m)
  scores = np.asarray(jnp.asarray(z_t) @ jnp.asarray(z_i).T)
  results = {'num_test': len(source), 'near_dup_fraction': float(near_dup.mean())}
  results.update(retrieval_metrics(scores, near_dup))
  return results


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Restores a checkpoint of `workdir` (the latest, or config.eval.step), writes results.json.

  The checkpoint may be evaluated on any dataset whose windows have its length: the dataset
  `config.data` names, read in the checkpoint's own scene frame or in that dataset's
  (`config.eval.normalisation`, 'train' or 'target').
  """
  from trajcross_jax import train  # The state's structure lives with training.

  mgr = checkpoint.manager(workdir, config.train.keep_checkpoints)
  step = mgr.latest_step() if config.eval.step < 0 else config.eval.step
  if step is None or step not in mgr.all_steps():
    raise FileNotFoundError(
      f'no checkpoint{"" if step is None else f" at step {step}"} in {mgr.directory}; '
      f'available: {sorted(mgr.all_steps())}'
    )
  builder = parallel.chief_first(pipeline.prepare, config.data)
  source = pipeline.run_split(builder, config.eval.split, config.data)
  mesh = parallel.make_mesh()
  frame = scene_frame(checkpoint.read_meta(mgr, step), builder, config.eval.normalisation)
  method = get_method(config, frame)
  tx = method.optimizer(train.total_steps(config, builder.info.splits['train'].num_examples))
  # Parameter and optimiser shapes do not depend on the batch, so a test batch will do.
  example = train.example_batch(source, config.train.batch_size)
  target = train.abstract_state(method, tx, config, mesh, example)
  state, _ = checkpoint.restore(mgr, step, target, config, training=False)
  results = {
    'step': int(step),
    'split': config.eval.split,
    'dataset': builder.info.full_name,
    'normalisation': {'frame': config.eval.normalisation, **frame.to_json()},
  }
  results.update(evaluate_state(method, state.params, state.extra, source, config, mesh))
  if parallel.is_chief():
    path = epath.Path(workdir) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    logging.info('Wrote %s\n%s', path, format_table(results))
  return results


def scene_frame(meta: dict[str, Any], builder, which: str) -> Normalisation:
  """The frame to read the evaluated data in: the checkpoint's ('train') or the data's own."""
  if which == 'target':
    return pipeline.normalisation(builder)
  if 'normalisation' not in meta:
    raise ValueError(
      'the checkpoint records no scene frame (it was made before frames were stored): '
      'evaluate with --config.eval.normalisation=target, or retrain'
    )
  return Normalisation.from_json(meta['normalisation'])


def format_table(results: dict[str, Any]) -> str:
  """A plain-text table of the headline numbers, both directions."""
  cols = ('top@1', 'top@5', 'top@10', 'mean_rank', 'median_rank', 'mrr')
  lines = [
    f'step {results["step"]}, {results["num_test"]} {results.get("split", "test")} pairs of '
    f'{results.get("dataset", "?")}',
    'direction ' + ' '.join(f'{c:>11}' for c in cols),
  ]
  for name in ('traj2img', 'img2traj'):
    lines.append(f'{name:9} ' + ' '.join(f'{results[name][c]:11.3f}' for c in cols))
  return '\n'.join(lines)
