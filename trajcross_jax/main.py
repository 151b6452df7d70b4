"""Entry point: python -m trajcross_jax.main --config configs/default.py --workdir DIR [--mode].

Modes: train_and_eval (default), train, eval, prepare (build the dataset), preview (a PNG
grid of pairs). Any config field can be overridden: --config.train.batch_size=64.
"""

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from trajcross_jax import evaluate, parallel, train, validation
from trajcross_jax.data import pipeline, preview

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).', lock_config=True)
flags.DEFINE_string('workdir', None, 'Where checkpoints, metrics and results go.')
flags.DEFINE_enum(
  'mode', 'train_and_eval', ['train_and_eval', 'train', 'eval', 'prepare', 'preview'], 'What to do.'
)
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = FLAGS.config
  try:
    validation.validate(config)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  parallel.maybe_initialize_distributed()
  logging.info('JAX: %d process(es), %d devices: %s', jax.process_count(), jax.device_count(),
               jax.devices())
  if FLAGS.mode == 'prepare':
    builder = pipeline.prepare(config.data)
    logging.info('Dataset %s is ready in %s', builder.info.full_name, builder.data_dir)
    print(f'Dataset {builder.info.full_name} written to {builder.data_dir}')
  elif FLAGS.mode == 'preview':
    path = preview.write_preview(config.data, FLAGS.workdir)
    print(f'Preview written to {path}')
  else:
    if FLAGS.mode in ('train', 'train_and_eval'):
      train.train(config, FLAGS.workdir)
    if FLAGS.mode in ('eval', 'train_and_eval'):
      results = evaluate.evaluate(config, FLAGS.workdir)
      print(evaluate.format_table(results))


if __name__ == '__main__':
  app.run(main)
