"""Table I, DBRLM (He et al. 2016): two CNNs, bidirectional likelihood over cosine scores."""

from configs.baselines import common


def get_config():
  config = common.get_config(
    'dbrlm',
    # Trajectory: points as words of a sentence CNN (the sizes of TRAJCROSS's position branch).
    point_embed=64,
    traj_conv_heights=(2, 3, 4, 5),
    traj_conv_features=64,
    # Image with its box: stride-2 CNN (the sizes of TRAJCROSS's shape CNN and box embedding).
    shape_channels=(32, 64, 128, 128),
    branch_dim=128,
    box_embed=64,
    embed_dim=256,  # The common space.
  )
  config.train.dbrlm_gamma = 10.0  # Fixed scale of the cosine inside the softmax.
  config.train.learning_rate = 3e-3  # Chosen on validation (1e-3 before).
  return config
