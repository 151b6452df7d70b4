"""The protocol's ceiling: retrieval by re-drawing (analysis by synthesis), no learning.

On the paper protocol every image is the project's rasteriser's drawing of its trajectory in a
box that contains it. A method that knows that rasteriser can score a (trajectory, image) pair
by drawing the trajectory in the image's box at each of the protocol's line widths and comparing
pixels:

  score(T, I) = -min over widths w of mean |draw(T, box(I), w) - I|   (uint8 levels)

and -inf when T does not fit inside the box (no image of the protocol could show it there).
It is no competitor for real pictures, which nobody drew with this rasteriser; it says what the
simulated protocol allows, and a protocol that defeats it (another renderer, noisy tracks) is one
where learning has to do the work. Both directions are ranked from the one score matrix, with
evaluate.py's metrics (ties count against the query).
"""

import functools
import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from etils import epath

from trajcross_jax import evaluate, parallel
from trajcross_jax.data import pipeline, render

# Points may sit on the box's edge; boxes are stored as float32 metres.
FIT_TOLERANCE_M = 1e-3


def fits(trajectories: np.ndarray, boxes: np.ndarray, tolerance: float = FIT_TOLERANCE_M):
  """(N_t, N_i) bool: trajectory t lies inside box i ([x_left, y_top, x_right, y_bottom])."""
  t = np.asarray(trajectories, np.float64)
  b = np.asarray(boxes, np.float64)
  lo, hi = t.min(axis=1), t.max(axis=1)
  return (
    (lo[:, None, 0] >= b[None, :, 0] - tolerance)
    & (hi[:, None, 0] <= b[None, :, 2] + tolerance)
    & (lo[:, None, 1] >= b[None, :, 3] - tolerance)
    & (hi[:, None, 1] <= b[None, :, 1] + tolerance)
  )


@jax.jit
def _indexed_distances(trajectories, images, boxes, rows, cols):
  """pair_distances of trajectory rows[p] against image cols[p], for each p."""
  return pair_distances(trajectories[rows], images[cols], boxes[cols])


@jax.jit
def pair_distances(trajectories: jax.Array, images: jax.Array, boxes: jax.Array) -> jax.Array:
  """Mean absolute pixel difference, at the best protocol line width, of each trajectory drawn
  in its paired box against its paired image. (P, M, 2), (P, S, S, 1) uint8, (P, 4) -> (P,)."""
  size = images.shape[1]
  windows = jnp.stack([boxes[:, 0], boxes[:, 3], boxes[:, 2] - boxes[:, 0]], axis=-1)
  target = images[..., 0].astype(jnp.float32)
  best = jnp.full(trajectories.shape[:1], jnp.inf)
  for width in render.WIDTHS:
    widths = jnp.full(trajectories.shape[:1], width, jnp.float32)
    drawn = render.to_uint8(
      render.render_polylines(trajectories, windows, widths, size=size, xp=jnp), xp=jnp
    ).astype(jnp.float32)
    best = jnp.minimum(best, jnp.abs(drawn - target).mean(axis=(1, 2)))
  return best


def score_matrix(
  trajectories: np.ndarray, images: np.ndarray, boxes: np.ndarray, chunk: int = 4096
) -> tuple[np.ndarray, dict[str, Any]]:
  """(N_t, N_i) scores (-pixel distance; -inf where the trajectory cannot be in the image),
  with how many pairs were drawn and how long it took."""
  start = time.perf_counter()
  possible = fits(trajectories, boxes)
  rows, cols = np.nonzero(possible)
  scores = np.full(possible.shape, -np.inf, np.float32)
  # The split on every local device; the possible pairs, by index, in padded chunks over them.
  mesh = parallel.make_mesh(jax.local_devices())
  split = jax.device_put(
    (np.asarray(trajectories, np.float32), np.asarray(images), np.asarray(boxes, np.float32)),
    parallel.replicated(mesh),
  )
  chunk = -(-chunk // mesh.size) * mesh.size
  d = parallel.map_batches(functools.partial(_indexed_distances, *split), [rows, cols], chunk, mesh)
  if d is not None:
    scores[rows, cols] = -d
  info = {
    'pairs_drawn': int(len(rows)),
    'possible_fraction': float(possible.mean()),
    'seconds': time.perf_counter() - start,
  }
  logging.info(
    'render reference: %d of %d pairs possible, drawn in %.1f s',
    len(rows),
    possible.size,
    info['seconds'],
  )
  return scores, info


def reference_metrics(data: dict[str, np.ndarray], near_duplicate_m: float) -> dict[str, Any]:
  """Both directions' metrics of the re-draw reference on one split (its every pair scored)."""
  scores, info = score_matrix(data['trajectory'], data['image'], data['box'])
  near_dup = evaluate.near_duplicates(data['trajectory'], near_duplicate_m)
  return {'method': 'render_reference', **info, **evaluate.score_metrics(scores, near_dup)}


def split_results(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The re-draw reference on config.eval.split of config.data (its dataset built if need be)."""
  builder = parallel.chief_first(pipeline.prepare, config.data)
  source = pipeline.run_split(builder, config.eval.split, config.data)
  data = source.get_batch(np.arange(len(source)))
  results = {'split': config.eval.split, 'dataset': builder.info.full_name}
  results.update(reference_metrics(data, config.eval.near_duplicate_m))
  return results


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """--mode=reference: split_results written to WORKDIR/eval/results.json, as an evaluation
  writes a model's. Needs no checkpoint."""
  results = split_results(config)
  if parallel.is_chief():
    path = epath.Path(workdir) / evaluate.RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    logging.info('Wrote %s\n%s', path, evaluate.format_table(results))
  return results
