"""ACMR (Wang et al. 2017): adversarial cross-modal retrieval with a modality classifier."""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from trajcross_jax import losses
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods.base import Batch, Method, PyTree, by_player, encoder_optimizer
from trajcross_jax.models import baselines
from trajcross_jax.models.discriminator import Discriminator


def bidirectional_triplet(z_traj: jax.Array, z_img: jax.Array, margin: float) -> jax.Array:
  """Hinge triplet loss over the batch in both directions, on cosine scores.

  For anchor i and every other item j of the batch: [margin - s_ii + s_ij]_+ with the images
  as candidates (trajectory anchors), plus [margin - s_ii + s_ji]_+ with the trajectories as
  candidates (image anchors); each direction averaged over the B (B - 1) triplets.
  """
  s = z_traj @ z_img.T
  pos = jnp.diagonal(s)
  off = 1.0 - jnp.eye(s.shape[0], dtype=s.dtype)
  n = off.sum()
  t2i = (jax.nn.relu(margin - pos[:, None] + s) * off).sum() / n
  i2t = (jax.nn.relu(margin - pos[None, :] + s) * off).sum() / n
  return t2i + i2t


class ACMR(Method):
  """ACMR: two MLP projectors to a common space and a modality classifier behind a reversal.

  Inputs: the trajectory's 20 normalised points, flattened (40 features); the image
  average-pooled by `model.image_pool` and flattened, with its normalised box. Each goes
  through its MLP projector (`model.acmr_hidden`, then `model.embed_dim`) to an L2-normalised
  embedding; the score is the cosine.

  ACMR's feature projector has a label-prediction term and a label-based triplet term.
  These pairs have no class labels: the only supervision is which trajectory goes with which
  image. So the label terms are replaced by a triplet (margin `train.acmr_margin`) loss in
  both directions with the matched pair as positive and every other item of the batch as a
  negative (bidirectional_triplet).

  The modality classifier (models/discriminator.py, the same MLP as TRAJCROSS's) descends
  its cross-entropy; the projectors get its gradient reversed and scaled by
  `train.adversarial_weight` * lambda_p, with lambda_p = 2 / (1 + exp(-10 p)) - 1 over
  progress p = steps taken / total steps (the DANN schedule ACMR uses, which its config sets as
  `train.adversarial_schedule`), which the train step passes to the loss.
  """

  def __init__(
    self,
    model: ml_collections.ConfigDict,
    train: ml_collections.ConfigDict,
    normalisation: Normalisation,
  ):
    self.model = model
    self.train = train
    self.features = baselines.FlatFeatures(
      model.image_pool, normalisation.center, normalisation.scale
    )
    layers = (*model.acmr_hidden, model.embed_dim)
    self.trajectory_projector = baselines.MLP(layers)
    self.image_projector = baselines.MLP(layers)
    self.discriminator = Discriminator(hidden=tuple(model.disc_hidden))

  def init(self, rng: jax.Array, batch: Batch) -> tuple[PyTree, PyTree]:
    rng_t, rng_i, rng_d = jax.random.split(rng, 3)
    x = self.features.trajectory(batch['trajectory'])
    y = self.features.image(batch['image'], batch['box'])
    params = {
      'encoders': {
        'trajectory': self.trajectory_projector.init(rng_t, x)['params'],
        'image': self.image_projector.init(rng_i, y)['params'],
      },
      'discriminator': self.discriminator.init(
        rng_d, jnp.zeros((1, self.model.embed_dim), jnp.float32)
      )['params'],
    }
    return params, {}

  def embed_trajectories(self, params: PyTree, extra: PyTree, trajectory: jax.Array) -> jax.Array:
    x = self.features.trajectory(trajectory)
    return losses.l2_normalise(
      self.trajectory_projector.apply({'params': params['encoders']['trajectory']}, x)
    )

  def embed_images(
    self, params: PyTree, extra: PyTree, image: jax.Array, box: jax.Array
  ) -> jax.Array:
    y = self.features.image(image, box)
    return losses.l2_normalise(
      self.image_projector.apply({'params': params['encoders']['image']}, y)
    )

  def loss(self, params, extra, batch, rng, progress):
    z_t = self.embed_trajectories(params, extra, batch['trajectory'])
    z_i = self.embed_images(params, extra, batch['image'], batch['box'])
    triplet = bidirectional_triplet(z_t, z_i, self.train.acmr_margin)
    scale = losses.reversal_weight(
      self.train.adversarial_weight, self.train.adversarial_schedule, progress
    )

    def classify(z):
      return self.discriminator.apply(
        {'params': params['discriminator']}, losses.gradient_reversal(z, scale)
      )

    adversarial, disc_acc = losses.modality_loss(classify(z_t), classify(z_i))
    # The classifier descends `adversarial`; through the reversal the projectors descend
    # triplet - scale * adversarial.
    total = triplet + adversarial
    metrics = {
      'loss': total,
      'triplet': triplet,
      'adversarial': adversarial,
      'disc_acc': disc_acc,
      'reversal_weight': scale,
    }
    return total, (metrics, extra)

  def optimizer(self, total_steps: int) -> optax.GradientTransformation:
    return optax.partition(
      {
        'encoders': encoder_optimizer(self.train, total_steps),
        'discriminator': optax.adam(self.train.disc_learning_rate),
      },
      by_player,
    )
