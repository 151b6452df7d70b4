"""TRAJCROSS: the two encoders, InfoNCE, and the adversarial modality game."""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from trajcross_jax import losses
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods.base import Batch, Method, PyTree, by_player, encoder_optimizer
from trajcross_jax.models.discriminator import Discriminator
from trajcross_jax.models.image import ImageEncoder
from trajcross_jax.models.trajectory import TrajectoryEncoder

# Upper bound of the learned 1/temperature, as in CLIP, so the logits cannot blow up.
MAX_LOGIT_SCALE = 100.0


class TrajCross(Method):
  """TRAJCROSS (Jing et al.), with its variants as config fields.

  params = {'encoders': {'trajectory', 'image', 'logit_scale'}, 'discriminator': ...}. One
  optimiser built with optax.partition gives each player its own update rule; the gradient
  reversal in the loss makes the encoders ascend the adversarial loss (weight
  `adversarial_weight`) while the classifier descends it. `adversarial=False` is nogan: no
  classifier, no adversarial loss.
  """

  def __init__(
    self,
    model: ml_collections.ConfigDict,
    train: ml_collections.ConfigDict,
    normalisation: Normalisation,
  ):
    self.model = model
    self.train = train
    common = dict(
      coord_center=normalisation.center,
      coord_scale=normalisation.scale,
      coord_channels=model.coord_channels,
      shape_channels=tuple(model.shape_channels),
      branch_dim=model.branch_dim,
    )
    self.trajectory_encoder = TrajectoryEncoder(
      point_embed=model.point_embed,
      conv_heights=tuple(model.traj_conv_heights),
      conv_features=model.traj_conv_features,
      shape_branch=model.traj_shape_branch,
      raster_size=model.traj_raster_size,
      raster_margin=model.traj_raster_margin,
      raster_line_width=model.traj_raster_line_width,
      **common,
    )
    self.image_encoder = ImageEncoder(
      wcnn_heights=tuple(model.wcnn_heights),
      wcnn_features=model.wcnn_features,
      box_embed=model.box_embed,
      use_box=model.use_box,
      shape_pool=model.image_shape_pool,
      **common,
    )
    self.discriminator = Discriminator(hidden=tuple(model.disc_hidden))

  def init(self, rng: jax.Array, batch: Batch) -> tuple[PyTree, PyTree]:
    rng_t, rng_i, rng_d = jax.random.split(rng, 3)
    traj_vars = self.trajectory_encoder.init(rng_t, batch['trajectory'])
    img_vars = self.image_encoder.init(rng_i, batch['image'], batch['box'])
    params = {
      'encoders': {
        'trajectory': traj_vars['params'],
        'image': img_vars['params'],
        'logit_scale': jnp.log(1.0 / jnp.asarray(self.train.temperature, jnp.float32)),
      }
    }
    if self.model.adversarial:
      dim = jax.eval_shape(self.trajectory_encoder.apply, traj_vars, batch['trajectory'])
      params['discriminator'] = self.discriminator.init(rng_d, jnp.zeros(dim.shape, jnp.float32))[
        'params'
      ]
    return params, {}

  def embed_trajectories(self, params: PyTree, extra: PyTree, trajectory: jax.Array) -> jax.Array:
    z = self.trajectory_encoder.apply({'params': params['encoders']['trajectory']}, trajectory)
    return losses.l2_normalise(z)

  def embed_images(
    self, params: PyTree, extra: PyTree, image: jax.Array, box: jax.Array
  ) -> jax.Array:
    z = self.image_encoder.apply({'params': params['encoders']['image']}, image, box)
    return losses.l2_normalise(z)

  def logit_scale(self, params: PyTree) -> jax.Array:
    """1 / temperature: learned unless train.learn_temperature is off."""
    log_scale = params['encoders']['logit_scale']
    if not self.train.learn_temperature:
      log_scale = jax.lax.stop_gradient(log_scale)
    return jnp.minimum(jnp.exp(log_scale), MAX_LOGIT_SCALE)

  def loss(self, params, extra, batch, rng, progress):
    z_t = self.embed_trajectories(params, extra, batch['trajectory'])
    z_i = self.embed_images(params, extra, batch['image'], batch['box'])
    contrastive, metrics = losses.infonce(z_t, z_i, self.logit_scale(params))
    metrics = dict(metrics, contrastive=contrastive, temperature=1.0 / self.logit_scale(params))
    total = contrastive
    if self.model.adversarial:
      adversarial, adversary_metrics = self.adversary_loss(params, z_t, z_i, progress)
      # The classifier descends `adversarial`; through the reversal the encoders descend
      # contrastive - weight * adversarial (the classifier's penalty, if any, is its own).
      total = contrastive + adversarial
      metrics.update(adversary_metrics)
    metrics['loss'] = total
    return total, (metrics, extra)

  def adversary_loss(self, params, z_t, z_i, progress) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The modality game's loss, behind the gradient reversal, and its metrics.

    The reversal weight is train.adversarial_weight, or that weight ramped by the DANN
    schedule (train.adversarial_schedule='dann'). The classifier's targets are smoothed by
    train.disc_label_smoothing, and train.disc_gradient_penalty weighs a gradient penalty that
    trains the classifier alone.
    """
    train = self.train

    def logits(z):
      return self.discriminator.apply({'params': params['discriminator']}, z)

    weight = losses.reversal_weight(train.adversarial_weight, train.adversarial_schedule, progress)

    def reverse(z):
      return losses.gradient_reversal(z, weight)

    adversarial, disc_acc = losses.modality_loss(
      logits(reverse(z_t)), logits(reverse(z_i)), train.disc_label_smoothing
    )
    metrics = {'adversarial': adversarial, 'disc_acc': disc_acc}
    metrics['reversal_weight'] = jnp.asarray(weight, jnp.float32)
    if train.disc_gradient_penalty:
      penalty = losses.input_gradient_penalty(logits, jnp.concatenate([z_t, z_i]))
      adversarial = adversarial + train.disc_gradient_penalty * penalty
      metrics['disc_penalty'] = penalty
    return adversarial, metrics

  def optimizer(self, total_steps: int) -> optax.GradientTransformation:
    disc_learning_rate = self.train.disc_learning_rate
    if self.train.disc_schedule == 'cosine':  # The classifier slows down with the encoders.
      disc_learning_rate = optax.cosine_decay_schedule(disc_learning_rate, max(total_steps, 1))
    return optax.partition(
      {
        'encoders': encoder_optimizer(self.train, total_steps, self.train.warmup_steps),
        'discriminator': optax.adam(disc_learning_rate),
      },
      by_player,
    )
