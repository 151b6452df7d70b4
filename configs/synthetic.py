"""The default model and schedule on the synthetic dataset: no download, works offline."""

from configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'synthetic'
  return config
