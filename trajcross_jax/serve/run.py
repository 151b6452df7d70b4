"""Starting the service: `trajcross serve --demo --port 8000`, or --mode=serve over indexes.

The demo serves the univ test split (both modalities; an item's id is its index in the split)
with the model shipped in the package (demo.py): on first start it builds the univ dataset from
the package's files and embeds the split into a cache directory, then every start loads it.
"""

import argparse
import os

import ml_collections
import uvicorn
from absl import logging
from etils import epath

from trajcross_jax.data import pipeline
from trajcross_jax.search import gallery as gallery_lib
from trajcross_jax.search import index as index_lib
from trajcross_jax.search import modes as search_modes
from trajcross_jax.serve import app as app_lib
from trajcross_jax.serve import demo

DEMO_NAME = 'univ-test'


def cache_dir() -> epath.Path:
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return epath.Path(base) / 'trajcross'


def demo_galleries(cache: epath.PathLike | None = None) -> dict[str, app_lib.Gallery]:
  """The demo gallery: the univ test split embedded by the shipped model (built once, cached)."""
  cache = epath.Path(cache) if cache else cache_dir()
  retriever = demo.load()
  # The config the demo model was trained with (the package has no configs/ folder).
  config = ml_collections.ConfigDict(demo.record()['config'])
  config.data.data_dir = str(cache / 'tfds')
  config.data.manual_dir = None
  config.data.download = False
  # Only the test split is served: a one-pair train split spares rendering 10,000 images. The
  # test split's draw does not depend on it (PROTOCOL.md section 3).
  config.data.train_size = 1
  builder = pipeline.prepare(config.data)
  directory = cache / 'galleries' / f'{DEMO_NAME}-{retriever.params_hash}'
  source = pipeline.load_split(builder, 'test', False, search_modes.GALLERY_FEATURES)
  manifest = gallery_lib.make_manifest(
    retriever,
    dataset=builder.info.full_name,
    dataset_dir=str(builder.data_dir),
    split='test',
    num_items=len(source),
    shard_size=100_000,
    dtype='float32',
    modalities=('trajectory', 'image'),
  )
  gallery_lib.embed(retriever, source, directory, manifest, progress=False)
  for modality in ('image', 'trajectory'):
    if not (index_lib.index_dir(directory, modality, 'exact') / index_lib.INDEX_FILE).exists():
      index_lib.build(directory, modality, 'exact')
  reranker = demo.load_reranker()
  return {DEMO_NAME: app_lib.Gallery.load(DEMO_NAME, directory, retriever, reranker=reranker)}


def named_galleries(entries) -> dict[str, app_lib.Gallery]:
  """{name: Gallery} from 'name=EMBEDDINGS_DIR' entries (each with its indexes built)."""
  out = {}
  for entry in entries:
    name, sep, directory = entry.partition('=')
    if not sep or not name or not directory:
      raise ValueError(f'an index to serve is NAME=EMBEDDINGS_DIR, got {entry!r}')
    out[name] = app_lib.Gallery.load(name, directory)
  return out


def serve(loader, host: str, port: int) -> None:
  """Runs the service until interrupted."""
  logging.info('Serving on http://%s:%d/', host, port)
  uvicorn.run(app_lib.create_app(loader), host=host, port=port, log_level='warning')


def cli(argv: list[str]) -> None:
  """`trajcross serve`: the service over the demo or named embedding directories."""
  parser = argparse.ArgumentParser(prog='trajcross serve', description=__doc__.split('\n')[0])
  parser.add_argument('--demo', action='store_true', help='serve the univ test split (no run)')
  parser.add_argument('--index', action='append', default=[], help='NAME=EMBEDDINGS_DIR')
  parser.add_argument('--host', default='127.0.0.1')
  parser.add_argument('--port', type=int, default=8000)
  parser.add_argument('--cache', default=None, help='where the demo keeps its data')
  args = parser.parse_args(argv)
  if args.demo == bool(args.index):
    parser.error('give --demo, or one or more --index NAME=EMBEDDINGS_DIR')
  if args.demo:
    loader = lambda: demo_galleries(args.cache)  # noqa: E731
  else:
    loader = lambda: named_galleries(args.index)  # noqa: E731
  serve(loader, args.host, args.port)
