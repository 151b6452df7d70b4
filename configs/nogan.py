"""nogan (paper Fig. 3): TRAJCROSS without the modality classifier and its adversarial loss."""

from configs import default


def get_config():
  config = default.get_config()
  config.rerank.enabled = False  # Tables I and II compare bi-encoders (the paper's systems).
  config.model.adversarial = False
  return config
