"""DBRLM (He et al. 2016): two CNNs, cosine similarity, a bidirectional likelihood objective."""

import jax
import ml_collections
import optax

from trajcross_jax import losses
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods.base import Batch, Method, PyTree, encoder_optimizer
from trajcross_jax.models import baselines, inputs


class DBRLM(Method):
  """Deep and bidirectional representation learning: a CNN per modality to a common space.

  Trajectory side: DBRLM's sentence CNN with points in place of words (PointSequenceCNN: a
  Dense per normalised point, Kim-style convolutions of heights `model.traj_conv_heights`,
  max over time, a Dense). Image side: a stride-2 CNN over the image with its box
  (ImageBoxCNN). Both end in `model.embed_dim`; the score is the cosine.

  Objective: the likelihood of the matched item against the unmatched ones, in both
  directions: p(image i | trajectory i) = softmax_j(gamma cos(t_i, v_j)) over the batch's
  images, and likewise p(trajectory i | image i); the loss is the mean negative
  log-likelihood of both (losses.infonce with a fixed scale gamma = `train.dbrlm_gamma`).
  """

  def __init__(
    self,
    model: ml_collections.ConfigDict,
    train: ml_collections.ConfigDict,
    normalisation: Normalisation,
  ):
    self.model = model
    self.train = train
    common = dict(coord_center=normalisation.center, coord_scale=normalisation.scale)
    self.trajectory_encoder = baselines.PointSequenceCNN(
      point_embed=model.point_embed,
      heights=tuple(model.traj_conv_heights),
      features=model.traj_conv_features,
      out_dim=model.embed_dim,
      **common,
    )
    self.image_encoder = baselines.ImageBoxCNN(
      channels=tuple(model.shape_channels),
      hidden=model.branch_dim,
      box_embed=model.box_embed,
      out_dim=model.embed_dim,
      **common,
    )

  def init(self, rng: jax.Array, batch: Batch) -> tuple[PyTree, PyTree]:
    rng_t, rng_i = jax.random.split(rng)
    picture = inputs.image_to_float(batch['image'])
    params = {
      'trajectory': self.trajectory_encoder.init(rng_t, batch['trajectory'])['params'],
      'image': self.image_encoder.init(rng_i, picture, batch['box'])['params'],
    }
    return params, {}

  def embed_trajectories(self, params: PyTree, extra: PyTree, trajectory: jax.Array) -> jax.Array:
    z = self.trajectory_encoder.apply({'params': params['trajectory']}, trajectory)
    return losses.l2_normalise(z)

  def embed_images(
    self, params: PyTree, extra: PyTree, image: jax.Array, box: jax.Array
  ) -> jax.Array:
    picture = inputs.image_to_float(image)
    return losses.l2_normalise(self.image_encoder.apply({'params': params['image']}, picture, box))

  def loss(self, params, extra, batch, rng, progress):
    z_t = self.embed_trajectories(params, extra, batch['trajectory'])
    z_i = self.embed_images(params, extra, batch['image'], batch['box'])
    nll, metrics = losses.infonce(z_t, z_i, self.train.dbrlm_gamma)
    return nll, (dict(metrics, loss=nll, contrastive=nll), extra)

  def optimizer(self, total_steps: int) -> optax.GradientTransformation:
    return encoder_optimizer(self.train, total_steps)
