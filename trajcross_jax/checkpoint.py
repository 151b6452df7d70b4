"""Checkpoints through orbax, behind three functions, so an orbax API change touches one file.

A checkpoint holds the train state (step, params, optimiser state, the method's extra state)
and a JSON record of the config that made it and of the data position.
"""

import json
from typing import Any

import ml_collections
import orbax.checkpoint as ocp
from etils import epath

# The config sections that decide the shapes and meaning of a checkpoint; a restore under a
# config that differs in any of them is refused (train and eval settings may change freely).
IDENTITY_SECTIONS = ('method', 'model', 'data')


def manager(workdir: str, keep: int = 3) -> ocp.CheckpointManager:
  """The checkpoint manager of a workdir (checkpoints in WORKDIR/checkpoints)."""
  options = ocp.CheckpointManagerOptions(
    max_to_keep=keep, create=True, enable_async_checkpointing=False
  )
  # orbax needs an absolute path; a relative --workdir is taken from the current directory.
  directory = epath.Path(workdir).absolute() / 'checkpoints'
  return ocp.CheckpointManager(directory, options=options, item_names=('state', 'meta'))


def identity(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The part of a config that a checkpoint must agree with, as plain JSON values."""
  plain = json.loads(config.to_json_best_effort())
  return {k: plain[k] for k in IDENTITY_SECTIONS}


def save(mgr: ocp.CheckpointManager, step: int, state, meta: dict[str, Any]) -> None:
  """Saves `state` at `step` with a JSON `meta` record, and waits until it is on disk."""
  mgr.save(
    step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
  )
  mgr.wait_until_finished()


def restore(mgr: ocp.CheckpointManager, step: int, abstract_state, config) -> tuple[Any, dict]:
  """Restores the state at `step` into the structure and shardings of `abstract_state`.

  Raises ValueError, naming the differing fields, if the checkpoint was made with another
  method, model or data config.
  """
  meta = mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
  expected = identity(config)
  if meta.get('config') != expected:
    raise ValueError(
      f'the checkpoint at step {step} in {mgr.directory} was made with another config: '
      + _describe_difference(meta.get('config'), expected)
    )
  restored = mgr.restore(
    step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
  )
  return restored['state'], meta


def _describe_difference(saved: dict | None, expected: dict) -> str:
  if saved is None:
    return 'it records no config'
  diffs = []
  for section in IDENTITY_SECTIONS:
    sa, sb = saved.get(section), expected[section]
    if isinstance(sa, dict) and isinstance(sb, dict):
      for key in sorted(set(sa) | set(sb)):
        if sa.get(key) != sb.get(key):
          diffs.append(f'{section}.{key}: checkpoint {sa.get(key)!r}, config {sb.get(key)!r}')
    elif sa != sb:
      diffs.append(f'{section}: checkpoint {sa!r}, config {sb!r}')
  return '; '.join(diffs) + ' (use another --workdir, or the config that made it)'
