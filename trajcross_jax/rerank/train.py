"""Training the cross-encoder on the bi-encoder's hard candidates of the training split.

Each group is one query (a trajectory or an image, half each) with its true partner and
`group - 1` others drawn from the bi-encoder's top `hard_pool` for that query: exactly the
confusions the second stage has to undo (mostly near-duplicates a frame or two apart). The loss is
the softmax cross-entropy of the partner within its group. The bi-encoder is the workdir's latest
checkpoint; its parameter hash is recorded, and a re-ranker is refused with another bi-encoder.

With config.rerank.redraw_images every pair is drawn afresh at the start of each epoch, by the
dataset's rules (augment.py, as the bi-encoder's training does each step): the stored pairs are
fixed draws, and on a hard dataset a fixed noisy observation per pair is something a cross-encoder
learns by heart. The candidate pools stay those of the stored pairs.

Every process trains the same re-ranker on its own devices (same data, same seed); process 0
writes it.
"""

import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from trajcross_jax import evaluate, parallel
from trajcross_jax.data import augment, pipeline
from trajcross_jax.data import hard as hard_lib
from trajcross_jax.rerank.reranker import Reranker, RerankerError, build_model, with_later_fields
from trajcross_jax.retriever import Retriever

# The rerank fields that only say how a trained re-ranker is used (how many of the bi-encoder's
# results it re-orders, and in what order), not how it trains: a change to them alone rewrites
# the record of the re-ranker there instead of training another.
USE_FIELDS = ('candidates', 'bi_weight')


def _trained_alike(a: dict[str, Any], b: dict[str, Any]) -> bool:
  """Whether two rerank configs (a record's, a run's) train the same re-ranker: equal but for
  USE_FIELDS, a field a record predates counting as its value then."""

  def training(rerank):
    return {k: v for k, v in with_later_fields(rerank).items() if k not in USE_FIELDS}

  return training(a) == training(b)


def hard_candidates(queries: np.ndarray, gallery: np.ndarray, pool: int, chunk: int = 1024):
  """(N, D) queries against their (N, D) partners -> (N, pool) the bi-encoder's best other
  items for each query (its own partner, item i for query i, left out), best first."""
  n = len(queries)
  pool = min(pool, n - 1)
  g = jnp.asarray(gallery)
  out = []
  for start in range(0, n, chunk):
    s = jnp.asarray(queries[start : start + chunk]) @ g.T
    rows = jnp.arange(s.shape[0])
    s = s.at[rows, start + rows].set(-jnp.inf)  # Not its own partner.
    out.append(np.asarray(jax.lax.top_k(s, pool)[1]))
  return np.concatenate(out)


def sample_groups(
  rng: np.random.Generator, queries: np.ndarray, pools: np.ndarray, group: int
) -> np.ndarray:
  """(B,) query ids and their (N, P) hard pools -> (B, group) ids: the partner, then others
  drawn without replacement from the query's pool."""
  picks = rng.random((len(queries), pools.shape[1])).argsort(axis=1)[:, : group - 1]
  others = np.take_along_axis(pools[queries], picks, axis=1)
  return np.concatenate([queries[:, None], others], axis=1)


def group_batch(data: dict[str, np.ndarray], queries: np.ndarray, ids: np.ndarray, is_image):
  """The (B, G, ...) arrays of a batch of groups: a trajectory query against the images of its
  group, or an image query (with its box) against the trajectories of its group."""
  g = ids.shape[1]
  t_query = np.repeat(data['trajectory'][queries][:, None], g, axis=1)
  i_query = np.repeat(data['image'][queries][:, None], g, axis=1)
  b_query = np.repeat(data['box'][queries][:, None], g, axis=1)

  def mask(like):  # is_image broadcast against a (B, G, ...) array.
    return is_image.reshape((-1,) + (1,) * (like.ndim - 1))

  return {
    'trajectory': np.where(mask(t_query), data['trajectory'][ids], t_query).astype(np.float32),
    'image': np.where(mask(i_query), i_query, data['image'][ids]),
    'box': np.where(mask(b_query), b_query, data['box'][ids]).astype(np.float32),
  }


def redrawn(
  data: dict[str, np.ndarray],
  key: jax.Array,
  hard: hard_lib.HardOptions,
  clean_fraction: float = 0.0,
  chunk: int = 1024,
) -> dict[str, np.ndarray]:
  """The split's pairs drawn afresh from `key` (augment.redraw_images, in chunks): images and
  boxes, and on a hard dataset the trajectories, fresh observations of the 'track' feature (a
  share clean_fraction of them the true track with its clean line image)."""
  size = int(data['image'].shape[1])
  redraw = jax.jit(augment.redraw_images, static_argnums=(2, 3, 5))
  shown = data['track'] if hard.active else data['trajectory']
  parts = []
  for i, start in enumerate(range(0, len(shown), chunk)):
    rows = slice(start, start + chunk)
    crowd = data['crowd'][rows] if hard.crowd > 0 else None
    drawn = redraw(jax.random.fold_in(key, i), shown[rows], size, hard, crowd, clean_fraction)
    parts.append([np.asarray(x) for x in drawn])
  image, box, trajectory = (np.concatenate(p) for p in zip(*parts, strict=True))
  return dict(data, image=image, box=box, trajectory=trajectory)


def make_step(model, tx, nll_weight: float = 0.0):
  """The jitted update of one batch of groups (column 0 of each group is the true pair): the
  softmax cross-entropy of the true pair in its group, plus, with `nll_weight` (a scorer whose
  scores are log densities, model.TrackMatcher), that weight times the true pairs' negative log
  likelihood per coordinate."""

  def loss_fn(params, batch):
    b, g, m = batch['trajectory'].shape[:3]
    flat = {k: v.reshape(b * g, *v.shape[2:]) for k, v in batch.items()}
    scores = model.apply(params, flat['trajectory'], flat['image'], flat['box']).reshape(b, g)
    loss = optax.softmax_cross_entropy_with_integer_labels(scores, jnp.zeros(b, jnp.int32))
    if nll_weight:
      loss = loss - nll_weight * scores[:, 0] / (2 * m)
    return loss.mean(), (scores.argmax(axis=1) == 0).mean()

  @jax.jit
  def step(params, opt_state, batch):
    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, {'loss': loss, 'accuracy': accuracy}

  return step


def train(config: ml_collections.ConfigDict, workdir: str) -> Reranker:
  """Trains the re-ranker of `config.rerank` over the bi-encoder of `workdir`; saves it there."""
  rerank = config.rerank
  t0 = time.perf_counter()
  retriever = Retriever.load(workdir, -1, config, batch_size=config.eval.batch_size)
  try:
    existing = Reranker.load(workdir, retriever.params_hash)
  except RerankerError:
    existing = None
  wanted = json.loads(rerank.to_json())
  if existing is not None and _trained_alike(existing.record['config'], wanted):
    if existing.record['config'] != wanted:  # Only how it is used changed.
      existing = Reranker.create(
        existing.model, existing.params, dict(existing.record, config=wanted)
      )
      if parallel.is_chief():
        existing.save(workdir)
      logging.info(
        'The re-ranker in %s/rerank is kept; it now re-orders %d candidates, bi_weight %s',
        workdir,
        rerank.candidates,
        rerank.bi_weight,
      )
      return existing
    logging.info('The re-ranker in %s/rerank is up to date (kept)', workdir)
    return existing
  builder = parallel.chief_first(pipeline.prepare, config.data)
  hard = pipeline.hard_options(config.data)
  features = pipeline.MODEL_FEATURES
  if rerank.redraw_images and hard.active:  # What the pairs are drawn again from.
    features += ('track',) + (('crowd',) if hard.crowd > 0 else ())
  source = pipeline.run_split(builder, 'train', config.data, in_memory=True, features=features)
  data = source.get_batch(np.arange(len(source)))
  z_t, z_i = evaluate.embed_split(retriever, source)
  pools = {
    'trajectory': hard_candidates(z_t, z_i, rerank.hard_pool),
    'image': hard_candidates(z_i, z_t, rerank.hard_pool),
  }
  n = len(z_t)
  if rerank.group > pools['image'].shape[1] + 1:
    raise ValueError(
      f'config.rerank.group={rerank.group} needs at least {rerank.group} training pairs '
      f'and hard_pool >= {rerank.group - 1}'
    )
  model = build_model(rerank)
  image_size = int(data['image'].shape[1])
  example = group_batch(data, np.zeros(1, np.int64), np.zeros((1, 1), np.int64), np.zeros(1, bool))
  flat = [v[:, 0] for v in (example['trajectory'], example['image'], example['box'])]
  params = model.init(jax.random.key(config.seed), *flat)
  steps_per_epoch = max(1, 2 * n // rerank.batch_size)
  num_steps = rerank.num_epochs * steps_per_epoch
  schedule = optax.warmup_cosine_decay_schedule(
    0.0, rerank.learning_rate, min(rerank.warmup_steps, num_steps), max(num_steps, 1)
  )
  tx = optax.adamw(schedule)
  opt_state = tx.init(params)
  step_fn = make_step(model, tx, rerank.nll_weight)
  rng = np.random.default_rng([config.seed, 3])
  window: list[dict[str, Any]] = []
  t_start = None
  for step in range(1, num_steps + 1):
    epoch_pos = (step - 1) % steps_per_epoch
    if epoch_pos == 0:
      order = rng.permutation(2 * n)  # Ids >= n: image queries.
      if rerank.redraw_images:
        epoch_key = jax.random.fold_in(jax.random.key(config.seed), (step - 1) // steps_per_epoch)
        data = redrawn(data, epoch_key, hard, rerank.clean_fraction)
    picked = order[epoch_pos * rerank.batch_size : (epoch_pos + 1) * rerank.batch_size]
    is_image = picked >= n
    queries = picked % n
    ids = np.where(
      is_image[:, None],
      sample_groups(rng, queries, pools['image'], rerank.group),
      sample_groups(rng, queries, pools['trajectory'], rerank.group),
    )
    batch = group_batch(data, queries, ids, is_image)
    params, opt_state, metrics = step_fn(params, opt_state, batch)
    window.append(metrics)
    if t_start is None:
      jax.block_until_ready(metrics)
      t_start, first = time.perf_counter(), step
    if step % config.train.log_every_steps == 0 or step == num_steps:
      values = {k: float(np.mean(jax.device_get([m[k] for m in window]))) for k in window[0]}
      window = []
      done = step - first
      rate = done * rerank.batch_size * rerank.group / max(time.perf_counter() - t_start, 1e-9)
      eta = (num_steps - step) * rerank.batch_size * rerank.group / rate if done else 0.0
      logging.info(
        'rerank step %d/%d (epoch %.2f) loss %.4f accuracy %.3f | %.0f pairs/s | ETA %dm%02ds',
        step,
        num_steps,
        step / steps_per_epoch,
        values['loss'],
        values['accuracy'],
        rate,
        eta // 60,
        eta % 60,
      )
  record = {
    'config': json.loads(rerank.to_json()),
    'bi_encoder': {'step': retriever.step, 'params_hash': retriever.params_hash},
    'window_length': retriever.window_length,
    'image_size': image_size,
    'training': {'pairs': n, 'steps': num_steps, 'wall_s': time.perf_counter() - t0},
  }
  reranker = Reranker.create(model, params, record)
  if parallel.is_chief():
    reranker.save(workdir)
    logging.info('Saved the re-ranker in %s/rerank (%.0f s)', workdir, record['training']['wall_s'])
  return reranker
