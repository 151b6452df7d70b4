"""onlyTraj (paper Table II): the trajectory encoder uses the point sequence only (no raster)."""

from configs import default


def get_config():
  config = default.get_config()
  config.rerank.enabled = False  # Tables I and II compare bi-encoders (the paper's systems).
  config.model.traj_shape_branch = 'none'
  return config
