"""Corr-AE and Corr-Cross-AE (Feng et al. 2014): two autoencoders whose codes are tied."""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods.base import Batch, Method, PyTree, encoder_optimizer
from trajcross_jax.models import baselines


def corr_ae_loss(
  h_traj: jax.Array,
  h_img: jax.Array,
  x: jax.Array,
  x_rec: jax.Array,
  y: jax.Array,
  y_rec: jax.Array,
  alpha: float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Feng et al.'s objective: (1 - alpha) (L_traj + L_img) + alpha L_corr, batch means.

  L_corr = ||h_traj - h_img||^2; L_traj = ||x - x_rec||^2 and L_img = ||y - y_rec||^2, each a
  squared norm per pair (sums over features), averaged over the batch.
  """

  def sq(a):
    return (a * a).sum(axis=-1).mean()

  corr, rec_t, rec_i = sq(h_traj - h_img), sq(x - x_rec), sq(y - y_rec)
  total = (1 - alpha) * (rec_t + rec_i) + alpha * corr
  return total, {'loss': total, 'correlation': corr, 'recon_traj': rec_t, 'recon_img': rec_i}


def distance_embedding(h: jax.Array, query_side: bool) -> jax.Array:
  """Augmented codes whose dot product is -||h_t - h_i||^2 / 2.

  [h, -|h|^2 / 2, 1] for trajectories and [h, 1, -|h|^2 / 2] for images: the dot product is
  h_t . h_i - |h_t|^2 / 2 - |h_i|^2 / 2, so ranking by it is ranking by distance in the code
  space, in both directions.
  """
  half_sq = -0.5 * (h * h).sum(axis=-1, keepdims=True)
  one = jnp.ones_like(half_sq)
  return jnp.concatenate([h, half_sq, one] if query_side else [h, one, half_sq], axis=-1)


class CorrAE(Method):
  """Corr-AE (cross=False) and Corr-Cross-AE (cross=True).

  Inputs: x, the trajectory's 20 normalised points flattened (40 features); y, the image
  average-pooled by `model.image_pool` and flattened, with its normalised box. Each modality
  has an MLP encoder (`model.ae_hidden`, then the code of `model.code_dim`) and an MLP decoder
  (the mirror); Feng et al. pretrain theirs as RBMs, these start from random weights.
  Corr-AE decodes each modality from its own code; Corr-Cross-AE decodes each from the
  other's code (x from h_img, y from h_traj). Loss: corr_ae_loss with alpha =
  `train.corr_alpha`. Retrieval is by Euclidean distance between codes, expressed as the dot
  product of augmented codes (distance_embedding) because evaluation scores by dot products.
  """

  def __init__(
    self,
    model: ml_collections.ConfigDict,
    train: ml_collections.ConfigDict,
    normalisation: Normalisation,
    cross: bool = False,
  ):
    self.model = model
    self.train = train
    self.cross = cross
    self.features = baselines.FlatFeatures(
      model.image_pool, normalisation.center, normalisation.scale
    )
    hidden = tuple(model.ae_hidden)
    self.encoders = {
      'trajectory': baselines.MLP((*hidden, model.code_dim)),
      'image': baselines.MLP((*hidden, model.code_dim)),
    }
    self._hidden = hidden

  def _decoder(self, out_dim: int) -> baselines.MLP:
    return baselines.MLP((*self._hidden[::-1], out_dim))

  def init(self, rng: jax.Array, batch: Batch) -> tuple[PyTree, PyTree]:
    keys = jax.random.split(rng, 4)
    x = self.features.trajectory(batch['trajectory'])
    y = self.features.image(batch['image'], batch['box'])
    code = jnp.zeros((1, self.model.code_dim), jnp.float32)
    params = {
      'encoders': {
        'trajectory': self.encoders['trajectory'].init(keys[0], x)['params'],
        'image': self.encoders['image'].init(keys[1], y)['params'],
      },
      'decoders': {
        'trajectory': self._decoder(x.shape[-1]).init(keys[2], code)['params'],
        'image': self._decoder(y.shape[-1]).init(keys[3], code)['params'],
      },
    }
    return params, {}

  def codes(self, params: PyTree, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    h_t = self.encoders['trajectory'].apply({'params': params['encoders']['trajectory']}, x)
    h_i = self.encoders['image'].apply({'params': params['encoders']['image']}, y)
    return h_t, h_i

  def embed_trajectories(self, params: PyTree, extra: PyTree, trajectory: jax.Array) -> jax.Array:
    x = self.features.trajectory(trajectory)
    h = self.encoders['trajectory'].apply({'params': params['encoders']['trajectory']}, x)
    return distance_embedding(h, query_side=True)

  def embed_images(
    self, params: PyTree, extra: PyTree, image: jax.Array, box: jax.Array
  ) -> jax.Array:
    y = self.features.image(image, box)
    h = self.encoders['image'].apply({'params': params['encoders']['image']}, y)
    return distance_embedding(h, query_side=False)

  def loss(self, params, extra, batch, rng, progress):
    x = self.features.trajectory(batch['trajectory'])
    y = self.features.image(batch['image'], batch['box'])
    h_t, h_i = self.codes(params, x, y)
    # Corr-Cross-AE: each modality is rebuilt from the other's code.
    code_for_x, code_for_y = (h_i, h_t) if self.cross else (h_t, h_i)
    dec = params['decoders']
    x_rec = self._decoder(x.shape[-1]).apply({'params': dec['trajectory']}, code_for_x)
    y_rec = self._decoder(y.shape[-1]).apply({'params': dec['image']}, code_for_y)
    total, metrics = corr_ae_loss(h_t, h_i, x, x_rec, y, y_rec, self.train.corr_alpha)
    return total, (metrics, extra)

  def optimizer(self, total_steps: int) -> optax.GradientTransformation:
    return encoder_optimizer(self.train, total_steps)


class CorrCrossAE(CorrAE):
  """Corr-Cross-AE: CorrAE with each modality reconstructed from the other's code."""

  def __init__(
    self,
    model: ml_collections.ConfigDict,
    train: ml_collections.ConfigDict,
    normalisation: Normalisation,
  ):
    super().__init__(model, train, normalisation, cross=True)
