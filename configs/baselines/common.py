"""What Table I's baselines share: configs/default.py less TRAJCROSS's model and re-ranker."""

import ml_collections

from configs import default


def get_config(method: str, **model) -> ml_collections.ConfigDict:
  """The default config for `method`, its model section holding only the fields in `model`."""
  config = default.get_config()
  config.method = method
  config.rerank.enabled = False  # Tables I and II compare bi-encoders (the paper's systems).
  # Equal budgets (issue 15): every row of Tables I and II trains as many pairs as TRAJCROSS,
  # configs/default.py's train.num_epochs at its train.batch_size (60 epochs of 39 full batches
  # of 256: 599,040 pairs, where its bi-encoder passes the paper's row). Inherited here, never
  # set per baseline; CCA's closed form reads the training split once.
  # The baseline's own fields: TRAJCROSS's (WCNN heights, raster sizes, ...) mean nothing to it.
  config.model = ml_collections.ConfigDict(model)
  return config
