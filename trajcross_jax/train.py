"""Training: the train state, the pure train step, and the loop with checkpoints and logs."""

import functools
import json
import math
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from etils import epath

from trajcross_jax import checkpoint, evaluate, parallel, plots
from trajcross_jax.data import augment, pipeline
from trajcross_jax.data import hard as hard_lib
from trajcross_jax.data.hard import HardOptions
from trajcross_jax.methods import Method, get_method


@flax.struct.dataclass
class TrainState:
  """Everything a step changes. The data position is derived from `step` (pipeline.py)."""

  step: jax.Array
  params: Any
  opt_state: Any
  extra: Any


def create_train_state(
  method: Method, tx: optax.GradientTransformation, rng: jax.Array, batch: dict[str, Any]
) -> TrainState:
  """A fresh state for inputs shaped like `batch`."""
  params, extra = method.init(rng, batch)
  return TrainState(
    step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), extra=extra
  )


def train_step(
  state: TrainState,
  batch: dict[str, jax.Array],
  rng: jax.Array,
  *,
  method: Method,
  tx: optax.GradientTransformation,
  redraw_images: bool,
  total_steps: int,
  hard: HardOptions = hard_lib.PAPER,
  clean_fraction: float = 0.0,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One update on a global batch. Pure: the randomness of step s is fold_in(rng, s).

  With redraw_images, each pair is drawn again: the image (and box) by the dataset's rules; on a
  hard dataset (`hard` active) also the trajectory, a fresh observation of the batch's 'track'
  (and with the crowd rule, the batch's 'crowd' paths drawn in the image); a share
  clean_fraction of those pairs is drawn by the paper protocol's rules instead.
  """
  rng = jax.random.fold_in(rng, state.step)
  rng_draw, rng_loss = jax.random.split(rng)
  if redraw_images:
    shown = batch['track'] if hard.active else batch['trajectory']
    image, box, trajectory = augment.redraw_images(
      rng_draw, shown, batch['image'].shape[1], hard, batch.get('crowd'), clean_fraction
    )
    batch = {k: v for k, v in batch.items() if k not in ('track', 'crowd')}
    batch = dict(batch, image=image, box=box, trajectory=trajectory)
  grad_fn = jax.value_and_grad(method.loss, has_aux=True)
  progress = jnp.minimum(state.step / max(total_steps, 1), 1.0)
  (_, (metrics, extra)), grads = grad_fn(state.params, state.extra, batch, rng_loss, progress)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = dict(metrics, grad_norm=optax.tree.norm(grads))
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, extra=extra)
  return new_state, metrics


def make_parallel_step(
  method,
  tx,
  redraw_images: bool,
  total_steps: int,
  mesh: jax.sharding.Mesh,
  state_shape,
  hard: HardOptions = hard_lib.PAPER,
  clean_fraction: float = 0.0,
):
  """train_step jitted over `mesh`: batch sharded on 'data', state and metrics replicated."""
  step = functools.partial(
    train_step,
    method=method,
    tx=tx,
    redraw_images=redraw_images,
    total_steps=total_steps,
    hard=hard,
    clean_fraction=clean_fraction,
  )
  rep = parallel.replicated(mesh)
  state_sharding = jax.tree.map(lambda _: rep, state_shape)
  return jax.jit(
    step,
    in_shardings=(state_sharding, parallel.batch_sharding(mesh), rep),
    out_shardings=(state_sharding, rep),
    donate_argnums=0,
  )


def abstract_state(method, tx, config, mesh, example_batch) -> TrainState:
  """The structure, shapes and (replicated) shardings of a state, without computing it."""
  init = functools.partial(create_train_state, method, tx)
  shape = jax.eval_shape(init, jax.random.key(config.seed), example_batch)
  rep = parallel.replicated(mesh)
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=rep), shape)


def init_state(method, tx, config, mesh, example_batch) -> TrainState:
  """The initial state, created directly with replicated shardings."""
  target = abstract_state(method, tx, config, mesh, example_batch)
  init = jax.jit(
    functools.partial(create_train_state, method, tx),
    out_shardings=jax.tree.map(lambda s: s.sharding, target),
  )
  return init(jax.random.key(config.seed), example_batch)


def total_steps(config: ml_collections.ConfigDict, num_train: int) -> int:
  """Training steps of a run: whole batches per epoch (the remainder dropped) times epochs."""
  per_epoch = num_train // config.train.batch_size
  if per_epoch == 0:
    raise ValueError(
      f'train.batch_size={config.train.batch_size} is larger than the split ({num_train} pairs)'
    )
  return per_epoch * config.train.num_epochs


def example_batch(source: pipeline.Source, batch_size: int) -> dict[str, np.ndarray]:
  """A batch shaped like training batches, for init and shapes."""
  return source.get_batch(np.arange(min(batch_size, len(source))))


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN or inf loss."""


def train(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains `config` in `workdir`, resuming from its latest checkpoint if there is one."""
  workdir = epath.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  is_chief = parallel.is_chief()
  builder = parallel.chief_first(pipeline.prepare, config.data)
  # A hard dataset's training pairs are drawn again from their true tracks (train_step).
  hard = pipeline.hard_options(config.data)
  redraws_hard = config.train.redraw_images and hard.active
  features = pipeline.MODEL_FEATURES
  if redraws_hard:  # The true track, and the other paths its images show.
    features += ('track',) + (('crowd',) if hard.crowd > 0 else ())
  source = pipeline.run_split(builder, 'train', config.data, features=features)
  mesh = parallel.make_mesh()
  batch_size = config.train.batch_size
  parallel.check_batch_size(batch_size, mesh, 'train.batch_size')
  num_steps = total_steps(config, len(source))
  per_epoch = len(source) // batch_size

  # The scene frame of the training data: positions are read in it, and it travels with the
  # checkpoints so that any later use of the model reads positions the same way.
  frame = pipeline.normalisation(builder)
  method = get_method(config, frame, num_steps)
  tx = method.optimizer(num_steps)
  example = example_batch(source, batch_size)
  mgr = checkpoint.manager(str(workdir), config.train.keep_checkpoints)
  latest = mgr.latest_step()
  if latest is None:
    state = init_state(method, tx, config, mesh, example)
  else:
    target = abstract_state(method, tx, config, mesh, example)
    state, _ = checkpoint.restore(mgr, latest, target, config)
    logging.info('Resumed from the checkpoint at step %d of %d', latest, num_steps)
  meta = {
    'config': checkpoint.identity(config),
    'total_steps': num_steps,
    'normalisation': frame.to_json(),
    'dataset': builder.info.full_name,
    # The whole config, so that a Retriever can rebuild the model from the checkpoint alone.
    'run_config': json.loads(config.to_json_best_effort()),
  }
  if latest is None:
    fitted = method.fit(state.params, state.extra, source)
    if fitted is not None:
      step, params, extra = parallel.replicate((np.int32(num_steps), *fitted), mesh)
      state = state.replace(step=step, params=params, extra=extra)
      checkpoint.save(mgr, num_steps, state, dict(meta, data_position={'closed_form': True}))
      logging.info('Fitted %s in closed form; saved as step %d', config.method, num_steps)
      return state
  # Accuracy along the run: config.eval.split every eval_every_epochs (0: never).
  eval_every = config.train.eval_every_epochs * per_epoch
  eval_source = pipeline.run_split(builder, config.eval.split, config.data) if eval_every else None
  p_step = make_parallel_step(
    method,
    tx,
    config.train.redraw_images,
    num_steps,
    mesh,
    state,
    hard,
    config.train.clean_fraction,
  )
  rng = parallel.replicate(jax.random.key(config.seed), mesh)

  start = int(state.step)
  batches = pipeline.train_batches(
    source,
    batch_size,
    config.seed,
    start,
    num_steps,
    jax.process_index(),
    jax.process_count(),
    config.data.num_threads,
  )
  metrics_file = workdir / 'metrics.jsonl'
  # Metrics stay on the device between log and checkpoint steps: a step never waits for a host
  # copy of the last one, so the host runs ahead and keeps an accelerator busy.
  pending: list[tuple[int, dict[str, jax.Array]]] = []
  window: list[dict[str, float]] = []
  t0 = None
  for step in range(start + 1, num_steps + 1):
    local = next(batches)
    state, metrics = p_step(state, parallel.global_batch(local, mesh), rng)
    pending.append((step, metrics))
    if t0 is None:  # Rates exclude the first step of a run, which compiles.
      jax.block_until_ready(metrics)
      t0, t0_step = time.perf_counter(), step
    log_now = step % config.train.log_every_steps == 0 or step == num_steps
    save_now = step % config.train.checkpoint_every_steps == 0 or step == num_steps
    eval_now = bool(eval_every) and (step % eval_every == 0 or step == num_steps)
    if not (log_now or save_now or eval_now):
      continue
    window.extend(_fetch_finite(pending, mgr))  # Before any save: never keep a NaN state.
    pending = []
    if log_now:
      record = _summarise(window, step, num_steps, per_epoch, batch_size, t0, t0_step)
      window = []
      if is_chief:
        _log(record)
        with metrics_file.open('a') as f:
          f.write(json.dumps(record) + '\n')
    if eval_now:
      results = evaluate.evaluate_params(
        method, state.params, state.extra, config, frame, eval_source, mesh
      )
      record = _eval_record(results, config.eval.split, step, per_epoch, t0)
      if is_chief:
        shown = ' '.join(f'{k[5:]} {v:.1f}' for k, v in record.items() if k.startswith('eval_'))
        logging.info('step %d: %s %s', step, config.eval.split, shown)
        with metrics_file.open('a') as f:
          f.write(json.dumps(record) + '\n')
    if save_now:
      data_position = dict(zip(('epoch', 'batch'), divmod(step, per_epoch), strict=True))
      checkpoint.save(mgr, step, state, dict(meta, data_position=data_position))
  if is_chief and metrics_file.exists():
    plots.training_curves(metrics_file, workdir / 'training_curves.png')
  return state


def _fetch_finite(pending, mgr) -> list[dict[str, float]]:
  """The host values of the steps' metrics; NonFiniteLossError at the first non-finite loss."""
  fetched = jax.device_get([m for _, m in pending])
  for (step, _), metrics in zip(pending, fetched, strict=True):
    loss = float(metrics['loss'])
    if not math.isfinite(loss):
      # The loss of step s is that of the parameters saved at step s - 1.
      good = [s for s in mgr.all_steps() if s <= step - 2]
      raise NonFiniteLossError(
        f'loss is {loss} at step {step}, computed with the parameters of step '
        f'{step - 1}; the last good checkpoint is step {max(good) if good else None} in '
        f'{mgr.directory} (evaluate it with --config.eval.step)'
      )
  return [jax.tree.map(float, m) for m in fetched]


def _summarise(window, step, num_steps, per_epoch, batch_size, t0, t0_step) -> dict[str, Any]:
  record = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
  elapsed = time.perf_counter() - t0
  steps_done = step - t0_step
  rate = steps_done * batch_size / elapsed if steps_done else float('nan')
  eta = (num_steps - step) * batch_size / rate if steps_done else float('nan')
  record.update(step=step, epoch=step / per_epoch, pairs_per_s=rate, eta_s=eta)
  return record


def _eval_record(results, split: str, step: int, per_epoch: int, t0: float) -> dict[str, Any]:
  """metrics.jsonl's record of an evaluation along the run: eval_<direction>_top@<k>."""
  # wall_s: since the first step (compilation excluded), evaluations included.
  record = {'step': step, 'epoch': step / per_epoch, 'wall_s': time.perf_counter() - t0}
  record['split'] = split
  for direction in ('traj2img', 'img2traj'):
    for k in evaluate.TOP_K[:3]:
      record[f'eval_{direction}_top@{k}'] = results[direction][f'top@{k}']
  return record


def _log(record: dict[str, Any]) -> None:
  keys = ('loss', 'contrastive', 'adversarial', 'disc_acc', 'batch_acc_t2i', 'temperature')
  parts = ' '.join(f'{k} {record[k]:.4f}' for k in keys if k in record)
  eta = record['eta_s']
  eta_text = f'{int(eta // 60)}m{int(eta % 60):02d}s' if math.isfinite(eta) else '?'
  logging.info(
    'step %d (epoch %.2f) %s | %.0f pairs/s | ETA %s',
    record['step'],
    record['epoch'],
    parts,
    record['pairs_per_s'],
    eta_text,
  )
