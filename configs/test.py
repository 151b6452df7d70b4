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
  config.train.checkpoint_every_steps = 3
  config.eval.batch_size = 32
  return config
