"""Table I, MoCo (He et al. 2020): trajectory raster as query, image as momentum key."""

from configs import default


def get_config():
  config = default.get_config()
  config.method = 'moco'
  config.model.embed_dim = 128  # Output of the (query and key) encoder.
  config.model.moco_queue_size = 4096  # Negatives kept in the queue (16 batches of 256).
  config.train.moco_momentum = 0.999  # Key encoder: theta_k <- m theta_k + (1 - m) theta_q.
  config.train.moco_temperature = 0.07  # Fixed InfoNCE temperature.
  config.train.num_epochs = 10  # 390 steps: train + eval took 7 min on 2 shared CPU cores.
  return config
