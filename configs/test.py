"""CPU-tiny: synthetic data, small sizes, a few steps, so train-then-eval runs in seconds."""

from configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'synthetic'
  config.data.train_size = 64
  config.data.test_size = 48
  config.model.point_embed = 8
  config.model.traj_conv_heights = (2, 3)
  config.model.traj_conv_features = 8
  config.model.traj_raster_size = 16
  config.model.shape_channels = (8, 8)
  config.model.wcnn_heights = (3,)
  config.model.wcnn_features = 8
  config.model.box_embed = 8
  config.model.branch_dim = 16
  config.model.disc_hidden = (16,)
  config.train.batch_size = 16
  config.train.num_epochs = 2
  config.train.warmup_steps = 2
  config.train.log_every_steps = 2
  config.train.eval_every_epochs = 0  # tests/test_main.py turns it on.
  config.train.checkpoint_every_steps = 3
  config.eval.batch_size = 32
  # Tiny, and off: the tests of the bi-encoder stand alone; tests/test_rerank.py turns it on.
  config.rerank.enabled = False
  config.rerank.candidates = 5
  config.rerank.hard_pool = 6
  config.rerank.group = 4
  config.rerank.batch_size = 8
  config.rerank.num_epochs = 2
  config.rerank.warmup_steps = 2
  config.rerank.channels = (4, 8)
  config.rerank.hidden = 8
  return config
