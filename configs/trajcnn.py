"""TrajCNN (paper Table II): the shape branch is a CNN over the raw point sequence, not a raster."""

from configs import default


def get_config():
  config = default.get_config()
  config.rerank.enabled = False  # Tables I and II compare bi-encoders (the paper's systems).
  config.model.traj_shape_branch = 'seqcnn'
  return config
