"""noxy (paper Fig. 3): the image encoder gets no box, so no location information at all."""

from configs import default


def get_config():
  config = default.get_config()
  config.rerank.enabled = False  # Tables I and II compare bi-encoders (the paper's systems).
  config.model.use_box = False
  return config
