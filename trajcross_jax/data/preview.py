"""--mode=preview: a PNG grid of pairs for checking the data by eye."""

import ml_collections
import numpy as np
from etils import epath

from trajcross_jax import plots
from trajcross_jax.data import pipeline

PREVIEW_FEATURES = ('trajectory', 'image', 'box', 'source', 'ped_id', 'start_frame')


def write_preview(
  data: ml_collections.ConfigDict, workdir: str, split: str = 'train', count: int = 16
) -> epath.Path:
  """Writes WORKDIR/preview_<split>.png with `count` pairs drawn evenly from the split."""
  builder = pipeline.prepare(data)
  source = pipeline.load_split(builder, split, in_memory=False, features=PREVIEW_FEATURES)
  indices = np.linspace(0, len(source) - 1, min(count, len(source))).astype(int)
  examples = source.get_batch(indices)
  out = epath.Path(workdir) / f'preview_{split}.png'
  out.parent.mkdir(parents=True, exist_ok=True)
  plots.pair_grid(examples, out)
  return out
