"""The re-draw reference (trajcross_jax/render_reference.py) on the test split of dataset configs.

  python -m benchmarks.render_reference [--datasets=univ] [--data_dir=DIR]

For each `trajcross` tfds config named, scores every (trajectory, image) pair of the test split
by drawing the trajectory in the image's box at each protocol line width (no learning, no
checkpoint) and writes benchmarks/results/render_reference.json: a list `rows`, each with
`protocol` (the dataset config), `method` ('render_reference'), `trained_on` (None: nothing is
trained), `traj2img` / `img2traj` metrics, how many pairs could be drawn and the seconds it took.
"""

import json
import pathlib
import time

import ml_collections
from absl import app, flags

from benchmarks import machine
from configs import default
from trajcross_jax import render_reference
from trajcross_jax.data import pipeline

REPO = pathlib.Path(__file__).resolve().parents[1]
_DATASETS = flags.DEFINE_list('datasets', ['univ'], 'trajcross tfds configs to score.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'tfds data_dir (None: the default).')
_OUTPUT = flags.DEFINE_string(
  'output', str(REPO / 'benchmarks' / 'results' / 'render_reference.json'), 'Results file.'
)
KEEP = ('top@1', 'top@5', 'top@10', 'mean_rank', 'top@1_near_dup', 'top@1_no_near_dup')


def protocol_config(dataset: str, hard: dict | None = None) -> ml_collections.ConfigDict:
  """configs/default.py on `dataset`'s test split, with the config.data.hard fields `hard`."""
  config = default.get_config()
  config.data.name = dataset
  config.data.data_dir = _DATA_DIR.value
  config.data.hard.update(hard or {})
  config.eval.split = 'test'
  return config


def row(dataset: str, hard: dict | None = None) -> dict:
  """The reference's metrics on `dataset`'s test split (`hard`: config.data.hard fields set).

  `protocol` is the built config's name: the dataset's, or e.g. 'univ-noise_m0.2' with a rule.
  """
  config = protocol_config(dataset, hard)
  results = render_reference.split_results(config)
  return {
    'protocol': pipeline.get_builder(config.data).builder_config.name,
    'method': 'render_reference',
    'trained_on': None,
    'num_test': results['num_test'],
    **{d: {k: results[d][k] for k in KEEP} for d in ('traj2img', 'img2traj')},
    'pairs_drawn': results['pairs_drawn'],
    'possible_fraction': results['possible_fraction'],
    'seconds': results['seconds'],
  }


def main(argv):
  del argv
  record = {
    'command': 'python -m benchmarks.render_reference --datasets=' + ','.join(_DATASETS.value),
    'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'machine': machine.describe(),
    'rows': [row(d) for d in _DATASETS.value],
  }
  out = pathlib.Path(_OUTPUT.value)
  out.write_text(json.dumps(record, indent=2) + '\n')
  print(json.dumps(record['rows'], indent=2))
  print(f'wrote {out}')


if __name__ == '__main__':
  app.run(main)
