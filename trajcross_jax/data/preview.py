"""--mode=preview: a PNG grid of pairs for checking the data by eye."""

import ml_collections
import numpy as np
from etils import epath

from trajcross_jax import plots
from trajcross_jax.data import geo, pipeline

PREVIEW_FEATURES = ('trajectory', 'image', 'box', 'source', 'track_id', 'start_frame')


def write_preview(
  data: ml_collections.ConfigDict, workdir: str, split: str = 'train', count: int = 16
) -> epath.Path:
  """Writes WORKDIR/preview_<split>.png with `count` pairs drawn evenly from the split.

  Boxes are labelled in metres, and also in degrees when the dataset came in lon/lat.
  """
  builder = pipeline.prepare(data)
  source = pipeline.load_split(builder, split, in_memory=False, features=PREVIEW_FEATURES)
  indices = np.linspace(0, len(source) - 1, min(count, len(source))).astype(int)
  examples = source.get_batch(indices)
  projection = pipeline.projection(builder)
  if projection is not None:  # Lon/lat data: label each box in degrees too.
    examples['box_lonlat'] = geo.box_to_lonlat(projection, examples['box'].astype(np.float64))
  out = epath.Path(workdir) / f'preview_{split}.png'
  out.parent.mkdir(parents=True, exist_ok=True)
  plots.pair_grid(examples, out)
  return out
