"""Measures the data layer's speed and writes benchmarks/results/data_speed.json.

  python -m benchmarks.data_speed [--univ_dir=DIR] [--output=FILE]

(from the repository root, with the package installed, `pip install -e .`, or PYTHONPATH=.)

Each measurement is a function in MEASUREMENTS that returns a dict of numbers; add one there to
measure something else.
"""

import json
import os
import pathlib
import tempfile
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds
from absl import app, flags

from benchmarks import machine
from trajcross_jax.data import builder, pipeline, render, windows

_REPO = pathlib.Path(__file__).resolve().parents[1]

_UNIV_DIR = flags.DEFINE_string(
  'univ_dir',
  os.environ.get('TRAJCROSS_UNIV_DIR', str(_REPO.parent / 'shared' / 'data' / 'univ')),
  'Directory with the three univ files (default: $TRAJCROSS_UNIV_DIR or ../shared/data/univ).',
)
_OUTPUT = flags.DEFINE_string(
  'output', str(_REPO / 'benchmarks' / 'results' / 'data_speed.json'), 'Where to write results.'
)
_BATCH = flags.DEFINE_integer('batch', 256, 'Images per rasteriser measurement.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Rasteriser timings to take; the best is kept.')


def build_seconds(name: str) -> dict[str, float]:
  """Seconds to build a registered config from scratch into a temporary directory."""
  with tempfile.TemporaryDirectory() as data_dir:
    data_builder = builder.make_builder(name, data_dir)
    config = tfds.download.DownloadConfig(manual_dir=_UNIV_DIR.value if name == 'univ' else None)
    elapsed = machine.seconds(lambda: data_builder.download_and_prepare(download_config=config))
    examples = data_builder.info.splits.total_num_examples
  return {f'build_{name}_s': elapsed, f'build_{name}_examples': examples}


def build_univ() -> dict[str, float]:
  return build_seconds('univ')


def build_synthetic() -> dict[str, float]:
  return build_seconds('synthetic')


def rasteriser() -> dict[str, float]:
  """Images/s of the builder's numpy path (in its chunks) and of the jitted JAX path."""
  files = {name: pathlib.Path(_UNIV_DIR.value) / f'{name}.txt' for name in windows.TRAIN_FILES}
  sample = windows.draw(windows.read_pool(files), _BATCH.value, seed=0, split_index=0)
  params = [
    render.draw_image_params(xy, 0, windows.FILE_CODES[source], ped_id, frame)
    for xy, source, ped_id, frame in zip(
      sample.xy, sample.source, sample.ped_id, sample.start_frame, strict=True
    )
  ]
  image_windows = np.stack([w for w, _ in params])
  widths = np.array([w for _, w in params])
  chunk = render.chunk_size(sample.xy.shape[1])

  def numpy_path():
    for start in range(0, len(sample), chunk):
      end = start + chunk
      render.render_polylines(sample.xy[start:end], image_windows[start:end], widths[start:end])

  jitted = jax.jit(lambda p, w, d: render.render_polylines(p, w, d, xp=jnp))
  args = [jnp.asarray(a) for a in (sample.xy, image_windows, widths)]
  jitted(*args).block_until_ready()  # Compile outside the timing.
  numpy_s = min(machine.seconds(numpy_path) for _ in range(_REPEATS.value))
  jax_s = min(
    machine.seconds(lambda: jitted(*args).block_until_ready()) for _ in range(_REPEATS.value)
  )
  return {
    'render_batch': len(sample),
    'render_numpy_chunk': chunk,
    'render_numpy_images_per_s': len(sample) / numpy_s,
    'render_jax_jit_images_per_s': len(sample) / jax_s,
  }


def input_pipeline() -> dict[str, float]:
  """Training examples/s of the input pipeline at batch 256, in memory and streamed (grain)."""
  results = {}
  with tempfile.TemporaryDirectory() as data_dir:
    data_builder = builder.make_builder('univ', data_dir)
    data_builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=_UNIV_DIR.value)
    )
    for in_memory in (True, False):
      source = pipeline.load_split(data_builder, 'train', in_memory)
      steps = 2 * len(source) // _BATCH.value  # Two epochs: the epoch boundary is included.
      batches = pipeline.train_batches(source, _BATCH.value, 0, 0, steps)
      next(batches)  # Thread start-up outside the timing.
      elapsed = machine.seconds(lambda batches=batches: [None for _ in batches])
      name = 'in_memory' if in_memory else 'streamed'
      results[f'pipeline_{name}_examples_per_s'] = (steps - 1) * _BATCH.value / elapsed
  return results


MEASUREMENTS: dict[str, Callable[[], dict[str, float]]] = {
  'build_univ': build_univ,
  'build_synthetic': build_synthetic,
  'rasteriser': rasteriser,
  'input_pipeline': input_pipeline,
}


def main(argv):
  del argv
  results = {}
  for name, measure in MEASUREMENTS.items():
    measured = measure()
    results.update(measured)
    print(f'{name}: ' + ', '.join(f'{k}={v:.4g}' for k, v in measured.items()))
  record = {
    'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'machine': dict(machine.describe(), tensorflow_datasets=tfds.__version__),
    'results': results,
  }
  output = pathlib.Path(_OUTPUT.value)
  output.parent.mkdir(parents=True, exist_ok=True)
  output.write_text(json.dumps(record, indent=2) + '\n')
  print(f'wrote {output}')


if __name__ == '__main__':
  app.run(main)
