"""Entry point: python -m trajcross_jax.main (or `trajcross`) --config C --workdir DIR [--mode].

Modes (MODES): train_and_eval (default), train, rerank, eval, reference, prepare, preview,
embed, index, search, serve.
Any config field can be overridden: --config.train.batch_size=64.
"""

import logging as pylogging
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from trajcross_jax import checkpoint, evaluate, parallel, render_reference, train, validation
from trajcross_jax.data import builder, custom, pipeline, preview, readers
from trajcross_jax.rerank import reranker
from trajcross_jax.rerank import train as rerank_train
from trajcross_jax.retriever import InputError
from trajcross_jax.search import gallery, query
from trajcross_jax.search import index as index_lib
from trajcross_jax.search import modes as search_modes

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).', lock_config=True)
flags.DEFINE_string('workdir', None, 'Where checkpoints, metrics and results go.')
MODES = {
  'train_and_eval': 'train (resuming if there are checkpoints), then evaluate',
  'train': 'train only (the bi-encoder, then the re-ranker when config.rerank.enabled)',
  'rerank': 'train the re-ranker (config.rerank) over the trained bi-encoder of --workdir',
  'eval': 'evaluate a checkpoint on config.data (results.json)',
  'reference': 'the re-draw reference (no learning, no checkpoint) on config.eval.split',
  'prepare': 'build the dataset config.data names',
  'preview': 'a PNG of pairs of the dataset',
  'embed': 'embed a gallery (config.embed) into numbered shards',
  'index': 'index an embedding directory (config.index): exact or FAISS',
  'search': 'query an index by trajectory or image (config.search)',
  'serve': 'the HTTP service and web page over config.serve.indexes (or: trajcross serve)',
}
flags.DEFINE_enum(
  'mode',
  'train_and_eval',
  list(MODES),
  'What to do: ' + '; '.join(f'{mode}: {what}' for mode, what in MODES.items()) + '.',
)
flags.mark_flags_as_required(['config', 'workdir'])

# Errors about the user's input (files, downloads, workdirs): one line on the command line, with
# the file and line where there is one, instead of a traceback.
USER_ERRORS = (
  readers.TrackFileError,
  custom.CustomDataError,
  builder.DownloadError,
  checkpoint.CheckpointMismatchError,
  FileNotFoundError,
  InputError,
  gallery.GalleryError,
  index_lib.SearchIndexError,
  query.QueryFileError,
  reranker.RerankerError,
)


def _quiet_orbax(record) -> bool:
  """Orbax logs each save and restore in a dozen INFO lines; keep only its warnings."""
  return record.levelno >= pylogging.WARNING or '/orbax/' not in record.pathname


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a bad --config override as one line instead of a traceback."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    sys.exit(f'error: {e}\nPass --help to see the flags.')
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    # ml_collections wraps a KeyError's repr in an AttributeError: unwrap it to plain text.
    message = str(e).replace('\\n', ' ').replace("\\'", '').strip('\'"')
    sys.exit(f'error: bad --config override: {message}')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = FLAGS.config
  logging.get_absl_handler().addFilter(_quiet_orbax)
  try:
    validation.validate(config, FLAGS.mode)
  except ValueError as e:
    sys.exit(f'error: {e}')
  try:
    parallel.maybe_initialize_distributed()
  except ValueError as e:
    sys.exit(f'error: {e}')
  logging.info(
    'JAX: %d process(es), %d devices: %s', jax.process_count(), jax.device_count(), jax.devices()
  )
  if not parallel.is_chief():  # Process 0 logs for all; the others only warn and fail.
    logging.set_verbosity(logging.WARNING)
  try:
    run(config, FLAGS.mode, FLAGS.workdir)
  except USER_ERRORS as e:
    sys.exit(f'error: {e}')


def run(config, mode: str, workdir: str) -> None:
  """Does what `mode` names."""
  if mode == 'prepare':
    dataset = parallel.chief_first(pipeline.prepare, config.data)
    logging.info('Dataset %s is ready in %s', dataset.info.full_name, dataset.data_dir)
    if parallel.is_chief():
      print(f'Dataset {dataset.info.full_name} written to {dataset.data_dir}')
  elif mode == 'preview':
    if parallel.is_chief():
      path = preview.write_preview(config.data, workdir)
      print(f'Preview written to {path}')
  elif mode == 'embed':
    search_modes.embed(config, workdir)
  elif mode == 'index':
    if parallel.is_chief():
      search_modes.index(config, workdir)
  elif mode == 'search':
    if parallel.is_chief():
      search_modes.search(config, workdir)
  elif mode == 'serve':
    from trajcross_jax.serve import run as serve_run

    entries = list(config.serve.indexes)
    serve_run.serve(
      lambda: serve_run.named_galleries(entries), config.serve.host, config.serve.port
    )
  elif mode == 'rerank':
    rerank_train.train(config, workdir)
  elif mode == 'reference':
    render_reference.run(config, workdir)
  else:
    if mode in ('train', 'train_and_eval'):
      train.train(config, workdir)
      if config.rerank.enabled:
        rerank_train.train(config, workdir)
    if mode in ('eval', 'train_and_eval'):
      evaluate.evaluate(config, workdir)


def cli() -> None:
  """The `trajcross` console command: the same flags and modes; `trajcross serve ...` serves."""
  if len(sys.argv) > 1 and sys.argv[1] == 'serve':
    from trajcross_jax.serve import run as serve_run

    serve_run.cli(sys.argv[2:])
    return
  app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  cli()
