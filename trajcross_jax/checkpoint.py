"""Checkpoints through orbax, behind a few functions, so an orbax API change touches one file.

A checkpoint holds the train state (step, params, optimiser state, the method's extra state)
and a JSON record of the config that made it, the scene frame it was trained in
(data/normalisation.py) and the data position.
"""

import json
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath

from trajcross_jax.data.normalisation import Normalisation

# What decides a checkpoint's shapes and meaning. Evaluating, embedding or searching with a
# checkpoint needs only these to agree, so a model can be evaluated on any other dataset.
MODEL_SECTIONS = ('method', 'model')
MODEL_DATA_FIELDS = ('window_length',)
# Where the data lives and how fast it is read: part of no identity, so a run can move.
LOCATION_FIELDS = ('data_dir', 'manual_dir', 'in_memory', 'num_threads', 'download')


class CheckpointMismatchError(ValueError):
  """A checkpoint was made with another method, model or dataset than the config names."""


def manager(workdir: str, keep: int = 3) -> ocp.CheckpointManager:
  """The checkpoint manager of a workdir (checkpoints in WORKDIR/checkpoints)."""
  options = ocp.CheckpointManagerOptions(
    max_to_keep=keep, create=True, enable_async_checkpointing=False
  )
  # orbax needs an absolute path; a relative --workdir is taken from the current directory.
  directory = epath.Path(workdir).absolute() / 'checkpoints'
  return ocp.CheckpointManager(directory, options=options, item_names=('state', 'meta'))


def identity(config: ml_collections.ConfigDict, training: bool = True) -> dict[str, Any]:
  """The part of a config that a checkpoint must agree with, as plain JSON values.

  Training (resuming) must agree on the method, the model and the dataset (but not on where it
  lives); any other use of a checkpoint only on the method, the model and the window length.
  Checkpoints record the training identity.
  """
  plain = json.loads(config.to_json_best_effort())
  record = {k: plain[k] for k in MODEL_SECTIONS}
  if training:
    record['data'] = {k: v for k, v in plain['data'].items() if k not in LOCATION_FIELDS}
  else:
    record['data'] = {k: plain['data'][k] for k in MODEL_DATA_FIELDS}
  return record


def read_meta(mgr: ocp.CheckpointManager, step: int) -> dict[str, Any]:
  """The JSON record saved with the checkpoint at `step`."""
  return mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']


def save(mgr: ocp.CheckpointManager, step: int, state, meta: dict[str, Any]) -> None:
  """Saves `state` at `step` with a JSON `meta` record, and waits until it is on disk."""
  mgr.save(
    step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
  )
  mgr.wait_until_finished()


def restore(
  mgr: ocp.CheckpointManager, step: int, abstract_state, config, training: bool = True
) -> tuple[Any, dict]:
  """Restores the state at `step` into the structure and shardings of `abstract_state`.

  Raises CheckpointMismatchError, naming the differing fields, if the checkpoint was made with
  another method or model (or, when `training`, another dataset: see `identity`).
  """
  meta = read_meta(mgr, step)
  check_identity(meta, config, training, f'step {step} in {mgr.directory}')
  restored = mgr.restore(
    step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
  )
  return restored['state'], meta


def check_identity(meta: dict[str, Any], config, training: bool, where: str) -> None:
  """Raises CheckpointMismatchError unless `config` agrees with the checkpoint's record."""
  expected = identity(config, training)
  saved = _project(meta.get('config'), expected)
  if saved != expected:
    raise CheckpointMismatchError(
      f'the checkpoint at {where} was made with another config: '
      + _describe_difference(saved, expected)
    )


def restore_for_inference(
  mgr: ocp.CheckpointManager, step: int, params_shape, extra_shape, sharding
) -> tuple[Any, Any]:
  """Only the parameters and the method's extra state at `step`, placed with `sharding`.

  The optimiser state is never read (orbax partial restore), so embedding needs neither the
  optimiser nor its memory.
  """
  target = jax.tree.map(
    lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
    {'params': params_shape, 'extra': extra_shape},
  )
  args = ocp.args.PyTreeRestore(
    item=target,
    restore_args=ocp.checkpoint_utils.construct_restore_args(target),
    partial_restore=True,
  )
  restored = mgr.restore(step, args=ocp.args.Composite(state=args))['state']
  return restored['params'], restored['extra']


def normalisation(meta: dict[str, Any]) -> Normalisation:
  """The scene frame a checkpoint was trained in."""
  if 'normalisation' not in meta:
    raise ValueError(
      'the checkpoint records no scene frame (it was made before frames were stored): '
      'evaluate with --config.eval.normalisation=target, or retrain'
    )
  return Normalisation.from_json(meta['normalisation'])


def _project(saved: dict | None, expected: dict) -> dict | None:
  """The saved identity cut to the data fields that `expected` compares.

  Older records also hold the location fields, which no identity compares.
  """
  if not isinstance(saved, dict):
    return None
  out = {section: saved.get(section) for section in expected}
  if isinstance(out['data'], dict):
    out['data'] = {k: v for k, v in out['data'].items() if k not in LOCATION_FIELDS}
    if set(expected['data']) == set(MODEL_DATA_FIELDS):
      out['data'] = {k: out['data'].get(k) for k in MODEL_DATA_FIELDS}
  return out


def _describe_difference(saved: dict | None, expected: dict) -> str:
  if saved is None:
    return 'it records no config'
  diffs = []
  for section in expected:
    sa, sb = saved.get(section), expected[section]
    if isinstance(sa, dict) and isinstance(sb, dict):
      for key in sorted(set(sa) | set(sb)):
        if sa.get(key) != sb.get(key):
          diffs.append(f'{section}.{key}: checkpoint {sa.get(key)!r}, config {sb.get(key)!r}')
    elif sa != sb:
      diffs.append(f'{section}: checkpoint {sa!r}, config {sb!r}')
  return '; '.join(diffs) + ' (use another --workdir, or the config that made it)'
