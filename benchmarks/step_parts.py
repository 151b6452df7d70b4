"""Where the train step's time goes: each part of it jitted and timed alone.

  python -m benchmarks.step_parts [--batch=128] [--repeats=7]

For both sizes of benchmarks/train_speed.py (`reference` and `default`), times the parts of
TRAJCROSS's step one at a time, each forward and backward (gradients of the parameters; of the
input too where an earlier layer needs them) as the step runs them: re-drawing the images, the
trajectory's raster with its coordinate channels, the position branch, each shape CNN, the WCNN,
and the whole step for comparison (minimum of --repeats calls, milliseconds). The parts do not
add up to the step exactly: XLA fuses across their borders. Writes
benchmarks/results/step_parts.json.
"""

import json
import pathlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks import machine, walks
from benchmarks import train_speed as speed
from trajcross_jax.data import augment
from trajcross_jax.models import inputs
from trajcross_jax.models.image import WCNN
from trajcross_jax.models.shape import SequenceCNN, ShapeCNN

REPO = pathlib.Path(__file__).resolve().parents[1]
OUTPUT = REPO / 'benchmarks' / 'results' / 'step_parts.json'
# --batch is train_speed's flag (this module builds its batches and steps).
_REPEATS = flags.DEFINE_integer('repeats', 7, 'Timed calls per part (the minimum is kept).')


def best_ms(fn: Callable, *args) -> float:
  """The fastest of --repeats calls of jitted fn, after one compiling call, in milliseconds."""
  fn = jax.jit(fn)
  jax.block_until_ready(fn(*args))
  return 1e3 * min(
    machine.seconds(lambda: jax.block_until_ready(fn(*args))) for _ in range(_REPEATS.value)
  )


def forward_backward(module, x: jax.Array, input_grad: bool) -> tuple[Callable, tuple]:
  """A function of (params, x) giving the gradients that the step computes for `module`."""
  params = module.init(jax.random.key(0), x)

  def grads(p, x):
    return jax.grad(lambda p, x: module.apply(p, x).sum(), argnums=(0, 1) if input_grad else 0)(
      p, x
    )

  return grads, (params, x)


def measure(size: str) -> dict[str, float]:
  """Milliseconds per part of the step at one size of configs/default.py."""
  config = speed.sized_config(size)
  m = config.model
  batch = walks.random_batch(flags.FLAGS.batch, 64)
  points = jnp.asarray(batch['trajectory'])
  center, scale = walks.FRAME.center, walks.FRAME.scale

  def trajectory_raster(p):
    raster, box = inputs.trajectory_raster(
      p, m.traj_raster_size, m.traj_raster_margin, m.traj_raster_line_width
    )
    return inputs.coord_channels(raster, box, center, scale)

  def image_input(image, box):
    x = inputs.coord_channels(inputs.image_to_float(image), box, center, scale)
    return x, inputs.block_mean(x, m.image_shape_pool)

  raster = jax.jit(trajectory_raster)(points)
  image, image_pooled = jax.jit(image_input)(jnp.asarray(batch['image']), jnp.asarray(batch['box']))
  shape_cnn = ShapeCNN(tuple(m.shape_channels), m.branch_dim)
  hidden = jnp.ones((flags.FLAGS.batch, config.data.window_length, m.point_embed))
  parts = {
    'redraw_images': (
      lambda key, p: augment.redraw_images(key, p, 64),
      (jax.random.key(0), points),
    ),
    'trajectory_raster': (trajectory_raster, (points,)),
    'image_input': (image_input, (jnp.asarray(batch['image']), jnp.asarray(batch['box']))),
    'position_convs': forward_backward(
      SequenceCNN(tuple(m.traj_conv_heights), m.traj_conv_features), hidden, True
    ),
    'trajectory_shape_cnn': forward_backward(shape_cnn, raster, False),
    'image_shape_cnn': forward_backward(shape_cnn, image_pooled, False),
    'wcnn': forward_backward(
      WCNN(tuple(m.wcnn_heights), m.wcnn_features, m.branch_dim), image, False
    ),
  }
  out = {name: best_ms(fn, *args) for name, (fn, args) in parts.items()}
  step = speed.JaxStep(config, batch)
  step.run(1)
  out['whole_step'] = 1e3 * min(step.run(1) for _ in range(_REPEATS.value))
  return out


def main(argv):
  del argv
  record = {
    'command': 'python -m benchmarks.step_parts',
    'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'machine': machine.describe(),
    'batch': flags.FLAGS.batch,
    'repeats': _REPEATS.value,
    'milliseconds': {size: measure(size) for size in speed.SIZES},
  }
  OUTPUT.write_text(json.dumps(record, indent=2) + '\n')
  print(json.dumps(record['milliseconds'], indent=2))
  print(f'wrote {OUTPUT}')


if __name__ == '__main__':
  app.run(main)
