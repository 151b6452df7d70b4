"""onlyTraj (paper Table II): the trajectory encoder uses the point sequence only (no raster)."""

from configs import default


def get_config():
  config = default.get_config()
  config.model.traj_shape_branch = 'none'
  return config
