"""What a trained model ranks first when it is wrong: the same pedestrian a few steps away, or
another pedestrian.

  python -m benchmarks.hard_errors --workdir=W [--dataset=univ_hard] [--split=validation] \
    [--validation_fraction=0.2] [--output=benchmarks/results/hard_errors.json]

Embeds the split with W's latest checkpoint, ranks both directions by the bi-encoder and, when W
has a re-ranker, by the two stages (evaluate.rerank_candidates), and sorts each query's first
result into one of `CLASSES` by the windows' recording, pedestrian and first frame. Writes the
share of queries (%) in each class, per direction and stage, to --output, beside the same
shares for the noise oracle and the dots oracle (trajcross_jax/noise_oracle.py) on the same
split: what the noise, and the noise with the images' resampling, leave. With stride-1
windows a held-out pedestrian's every window is in the validation split, so there each query
has its neighbours one step either side; the test split holds a sixth of its pool's windows.
"""

import json
import pathlib

import numpy as np
from absl import app, flags

from benchmarks import machine
from configs import default
from trajcross_jax import evaluate, noise_oracle
from trajcross_jax.data import pipeline
from trajcross_jax.rerank.reranker import Reranker
from trajcross_jax.retriever import Retriever

REPO = pathlib.Path(__file__).resolve().parents[1]
# Same pedestrian 1, 2, 3 or more steps apart; another pedestrian whose window shares frames
# with the query's (seen at the same time) or not.
CLASSES = (
  'correct',
  'same pedestrian, 1 step',
  'same pedestrian, 2 steps',
  'same pedestrian, 3 steps',
  'same pedestrian, 4+ steps',
  'other pedestrian, same time',
  'other pedestrian, other time',
)
META = ('source', 'ped_id', 'start_frame')


def frame_step(pedestrian: np.ndarray, start_frame: np.ndarray) -> int:
  """The smallest positive gap between two windows' first frames of one pedestrian."""
  gaps = [np.diff(np.unique(start_frame[pedestrian == p])) for p in np.unique(pedestrian)]
  gaps = np.concatenate([g for g in gaps if len(g)] or [np.zeros(0, int)])
  if not (gaps > 0).any():
    raise ValueError('no pedestrian has two windows: the steps between windows are unknown')
  return int(gaps[gaps > 0].min())


def classify(
  first: np.ndarray, pedestrian: np.ndarray, start_frame: np.ndarray, step: int, window: int
) -> np.ndarray:
  """(Q,) indices into CLASSES of each query q's first result `first[q]` (q's own: correct).

  Args:
    first: (Q,) the id ranked first for query q (queries are ids 0..Q-1).
    pedestrian: (Q,) a key per pedestrian (pipeline.pedestrian_keys).
    start_frame: (Q,) each window's first frame.
    step: frames between a track's points (frame_step).
    window: points per window.
  """
  q = np.arange(len(first))
  apart = np.abs(start_frame[first] - start_frame[q])
  same = pedestrian[first] == pedestrian[q]
  return np.select(
    [first == q, same, ~same & (apart < window * step)],
    [0, np.minimum(apart // step, 4), len(CLASSES) - 2],
    default=len(CLASSES) - 1,
  )


def shares(classes: np.ndarray) -> dict[str, float]:
  """The percentage of queries in each class."""
  counts = np.bincount(classes, minlength=len(CLASSES))
  return {name: float(100 * c / len(classes)) for name, c in zip(CLASSES, counts, strict=True)}


def define_flags() -> None:
  """The command line's flags, defined only when run as a script: tests import this module beside
  trajcross_jax.main, whose flags share these names."""
  flags.DEFINE_string('workdir', None, 'A trained workdir.', required=True)
  flags.DEFINE_string('dataset', 'univ_hard', 'trajcross tfds config.')
  flags.DEFINE_enum('split', 'validation', ['validation', 'test'], 'Split to score.')
  flags.DEFINE_float(
    'validation_fraction', 0.2, 'config.data.validation_fraction (the split the run held out).'
  )
  flags.DEFINE_string(
    'output', str(REPO / 'benchmarks' / 'results' / 'hard_errors.json'), 'Results file.'
  )


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  config = default.get_config()
  config.data.name = FLAGS.dataset
  config.data.validation_fraction = (
    FLAGS.validation_fraction if FLAGS.split == 'validation' else 0.0
  )
  config.eval.split = FLAGS.split
  retriever = Retriever.load(FLAGS.workdir, -1, config, batch_size=config.eval.batch_size)
  # The split once, with the true tracks the oracles read (noise_oracle.split_data).
  data, options = noise_oracle.split_data(config, META)
  z_t = retriever.embed_trajectories(data['trajectory'])
  z_i = retriever.embed_images(data['image'], data['box'])
  pedestrian = pipeline.pedestrian_keys(data['source'], data['ped_id'])
  start = data['start_frame'].astype(np.int64)
  where = (pedestrian, start, frame_step(pedestrian, start), config.data.window_length)
  reranker = Reranker.find(FLAGS.workdir, retriever.params_hash)
  scores = z_t @ z_i.T
  record = {
    'command': 'python -m benchmarks.hard_errors '
    + ' '.join(
      f'--{n}={FLAGS[n].value}' for n in ('workdir', 'dataset', 'split', 'validation_fraction')
    ),
    'machine': machine.describe(),
    'num_queries': len(scores),
  }
  for name, s in (('traj2img', scores), ('img2traj', scores.T)):
    record[name] = {'bi-encoder': shares(classify(s.argmax(1), *where))}
    if reranker is not None:
      candidates, cross, _ = evaluate.rerank_candidates(reranker, s, data, name)
      head = reranker.combined(cross, np.take_along_axis(s, candidates, axis=1))
      first = candidates[np.arange(len(s)), head.argmax(1)]
      record[name]['two stages'] = shares(classify(first, *where))
  # The oracles on the same split (noise_oracle.py): what the noise alone, and the noise with
  # the images' resampling, leave to get wrong; a model is set against these.
  for dots in (False, True):
    s = noise_oracle.oracle_scores(data, options, config.seed, dots)
    name = 'dots oracle' if dots else 'noise oracle'
    record['traj2img'][name] = shares(classify(s.argmax(1), *where))
    record['img2traj'][name] = shares(classify(s.T.argmax(1), *where))
  pathlib.Path(FLAGS.output).write_text(json.dumps(record, indent=2) + '\n')
  print(json.dumps(record, indent=2))


if __name__ == '__main__':
  define_flags()
  app.run(main)
