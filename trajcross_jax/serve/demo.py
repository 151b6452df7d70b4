"""The demo model: parameters shipped with the package, so `trajcross serve --demo` needs no run.

  python -m trajcross_jax.serve.demo --workdir W --results W/eval/results.json   # (re)export

writes demo/params.npz (the parameters only, compressed) and demo/model.json (the config that
made them, their scene frame, the sha256 of params.npz, the command and the test-split numbers),
and, where the run has a re-ranker (WORKDIR/rerank), demo/rerank.npz with its record in
model.json. `load()` checks the checksum and gives a Retriever; `load_reranker()` the re-ranker.
"""

import argparse
import hashlib
import io
import json
from typing import Any

import jax
import ml_collections
import numpy as np
from etils import epath

from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import get_method
from trajcross_jax.rerank import reranker as rerank_lib
from trajcross_jax.retriever import Retriever, abstract_params

DEMO_DIR = epath.Path(__file__).parent / 'demo'
PARAMS_FILE = 'params.npz'
RERANK_FILE = 'rerank.npz'
MODEL_FILE = 'model.json'


class DemoError(ValueError):
  """The shipped demo model is missing or damaged."""


def flatten(tree: Any) -> dict[str, np.ndarray]:
  """A parameter tree as {path: array}."""
  return {
    jax.tree_util.keystr(path): np.asarray(leaf)
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
  }


def unflatten(arrays: dict[str, np.ndarray], shapes: Any) -> Any:
  """{path: array} back into the tree structure of `shapes`."""
  paths, treedef = jax.tree_util.tree_flatten_with_path(shapes)
  missing = [jax.tree_util.keystr(p) for p, _ in paths if jax.tree_util.keystr(p) not in arrays]
  if missing:
    raise DemoError(f'the demo parameters lack {missing[:3]}')
  return jax.tree_util.tree_unflatten(treedef, [arrays[jax.tree_util.keystr(p)] for p, _ in paths])


def export(workdir: str, results: dict[str, Any], command: str, out_dir=DEMO_DIR) -> dict:
  """Writes the parameters of workdir's latest checkpoint and their record into `out_dir`."""
  try:  # The config the checkpoint records; older checkpoints only hold its identity.
    retriever = Retriever.load(workdir)
  except ValueError:
    from configs import default

    retriever = Retriever.load(workdir, config=default.get_config())
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **flatten(jax.device_get(retriever.params)))
  data = buffer.getvalue()
  record = {
    'command': command,
    'step': retriever.step,
    'params_sha256': hashlib.sha256(data).hexdigest(),
    'params_hash': retriever.params_hash,
    'config': json.loads(retriever.config.to_json_best_effort()),
    'normalisation': retriever.normalisation.to_json(),
    'test_results': {
      d: {k: results[d][k] for k in ('top@1', 'top@5', 'top@10')} for d in ('traj2img', 'img2traj')
    },
    'dataset': results.get('dataset'),
  }
  out_dir = epath.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  reranker = rerank_lib.Reranker.find(workdir, retriever.params_hash)
  if reranker is not None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **flatten(jax.device_get(reranker.params)))
    rerank_data = buffer.getvalue()
    record['rerank'] = dict(reranker.record, sha256=hashlib.sha256(rerank_data).hexdigest())
    record['test_results_reranked'] = {
      d: {k: results['reranked'][d][k] for k in ('top@1', 'top@5', 'top@10')}
      for d in ('traj2img', 'img2traj')
    }
    (out_dir / RERANK_FILE).write_bytes(rerank_data)
  (out_dir / PARAMS_FILE).write_bytes(data)
  (out_dir / MODEL_FILE).write_text(json.dumps(record, indent=2) + '\n')
  return record


def record(directory=DEMO_DIR) -> dict[str, Any]:
  path = epath.Path(directory) / MODEL_FILE
  if not path.exists():
    raise DemoError(f'no demo model in {directory} (reinstall the package)')
  return json.loads(path.read_text())


def load(directory=DEMO_DIR, batch_size: int = 64) -> Retriever:
  """The demo model as a Retriever, after checking its parameters' sha256."""
  directory = epath.Path(directory)
  info = record(directory)
  data = (directory / PARAMS_FILE).read_bytes()
  if hashlib.sha256(data).hexdigest() != info['params_sha256']:
    raise DemoError(f'{directory / PARAMS_FILE} does not match its sha256 in {MODEL_FILE}')
  config = ml_collections.ConfigDict(info['config'])
  frame = Normalisation.from_json(info['normalisation'])
  shapes, extra_shapes = abstract_params(get_method(config, frame), config)
  with np.load(io.BytesIO(data)) as arrays:
    params = unflatten(dict(arrays), shapes)
  extra = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), extra_shapes)
  return Retriever.from_params(
    config,
    params,
    extra,
    frame,
    workdir=f'demo:{directory}',
    step=info['step'],
    batch_size=batch_size,
  )


def load_reranker(directory=DEMO_DIR) -> rerank_lib.Reranker | None:
  """The demo model's re-ranker (after checking its sha256), or None if it ships without one."""
  directory = epath.Path(directory)
  info = record(directory).get('rerank')
  if info is None:
    return None
  data = (directory / RERANK_FILE).read_bytes()
  if hashlib.sha256(data).hexdigest() != info['sha256']:
    raise DemoError(f'{directory / RERANK_FILE} does not match its sha256 in {MODEL_FILE}')
  model = rerank_lib.build_model(ml_collections.ConfigDict(info['config']))
  shapes = rerank_lib.abstract_params(model, info['window_length'], info['image_size'])
  with np.load(io.BytesIO(data)) as arrays:
    params = unflatten(dict(arrays), shapes)
  return rerank_lib.Reranker.create(model, params, {k: v for k, v in info.items() if k != 'sha256'})


def main(argv: list[str] | None = None) -> None:
  """Exports a run's parameters as the demo model (see the module doc)."""
  parser = argparse.ArgumentParser(prog='python -m trajcross_jax.serve.demo')
  parser.add_argument('--workdir', required=True, help='the configs/default.py run to ship')
  parser.add_argument('--results', required=True, help="that run's eval/results.json (test)")
  parser.add_argument('--command', default='', help='the command that trained it')
  args = parser.parse_args(argv)
  results = json.loads(epath.Path(args.results).read_text())
  info = export(args.workdir, results, args.command)
  print(json.dumps({k: info[k] for k in ('step', 'params_sha256', 'test_results')}, indent=2))


if __name__ == '__main__':
  main()
