"""CCA (Hardoon et al. 2004): linear projections of the two views with maximal correlation.

Solved in closed form on the training split (`fit`); there is no gradient loop.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from trajcross_jax import losses
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods.base import Batch, Method, PyTree
from trajcross_jax.models import baselines

# Examples per chunk when computing the training split's features.
_FIT_CHUNK = 1024
# Canonical correlations are clipped here in the score, whose weights grow as 1 / (1 - rho^2).
_MAX_RHO = 0.999
SCORES = ('gaussian', 'cosine')


def fit_cca(
  x: np.ndarray, y: np.ndarray, reg: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Regularised CCA of paired rows x (N, Dx), y (N, Dy), in float64.

  Each covariance gets reg * (its mean variance) added to its diagonal; the canonical pairs
  are the singular vectors of the whitened cross-covariance Cxx^-1/2 Cxy Cyy^-1/2, mapped back
  through the whitening. Returns (mean_x, W_x (Dx, k), mean_y, W_y (Dy, k), correlations (k,)
  in decreasing order): (x - mean_x) @ W_x and (y - mean_y) @ W_y have unit variance (before
  the ridge) and correlation rho_j in their j-th columns.
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  n = len(x)
  mx, my = x.mean(axis=0), y.mean(axis=0)
  xc, yc = x - mx, y - my

  def inv_sqrt(c):
    c = c + reg * np.trace(c) / len(c) * np.eye(len(c))
    w, v = np.linalg.eigh(c)
    return (v / np.sqrt(np.maximum(w, 1e-12))) @ v.T

  wx = inv_sqrt(xc.T @ xc / (n - 1))
  wy = inv_sqrt(yc.T @ yc / (n - 1))
  u, s, vt = np.linalg.svd(wx @ (xc.T @ yc / (n - 1)) @ wy)
  return mx, wx @ u[:, :k], my, wy @ vt[:k].T, s[:k]


class CCA(Method):
  """Regularised linear CCA between the trajectory's points and the image with its box.

  Views: the trajectory as its 20 normalised points, flattened (40 features); the image
  average-pooled by `model.image_pool` (configs/baselines/cca.py: 8, so 8 x 8 = 64 features)
  and flattened, with its normalised box (4 features). `model.cca_components` canonical pairs
  are kept (at most 40). Fitted on the fixed training images (no re-draws).

  Score (`model.cca_score`): 'gaussian' (the default) is the log-likelihood ratio
  log p(u, v) / (p(u) p(v)) of the pair's canonical variates under probabilistic CCA (Bach and
  Jordan 2005: pair j jointly normal with unit variances and correlation rho_j), up to a
  constant: sum_j [a_j u_j v_j - b_j (u_j^2 + v_j^2)] with a_j = rho_j / (1 - rho_j^2) and
  b_j = rho_j^2 / (2 (1 - rho_j^2)). It is a dot product of augmented embeddings,
  [a * u, 1, -sum b u^2] . [v, -sum b v^2, 1]. 'cosine' is the cosine of the variates weighted
  by rho_j^2. On a held-out fifth of the training split the Gaussian score gave about twice the
  cosine's top@10 (21 against 11 %, top@1 about 3 against 2 %).

  params = {'trajectory': {'mean', 'proj'}, 'image': {'mean', 'proj'}, 'correlations'}. The
  loss, used only for tests and metrics (nothing descends it), is minus the mean over
  canonical pairs of their correlation within the batch.
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

  def init(self, rng: jax.Array, batch: Batch) -> tuple[PyTree, PyTree]:
    del rng
    dx = jax.eval_shape(self.features.trajectory, batch['trajectory']).shape[-1]
    dy = jax.eval_shape(self.features.image, batch['image'], batch['box']).shape[-1]
    k = min(self.model.cca_components, dx, dy)
    params = {
      'trajectory': {'mean': jnp.zeros(dx), 'proj': jnp.zeros((dx, k))},
      'image': {'mean': jnp.zeros(dy), 'proj': jnp.zeros((dy, k))},
      'correlations': jnp.zeros(k),
    }
    return params, {}

  def fit(self, params: PyTree, extra: PyTree, source) -> tuple[PyTree, PyTree]:
    traj_features = jax.jit(self.features.trajectory)
    image_features = jax.jit(self.features.image)
    xs, ys = [], []
    for start in range(0, len(source), _FIT_CHUNK):
      batch = source.get_batch(np.arange(start, min(start + _FIT_CHUNK, len(source))))
      xs.append(np.asarray(traj_features(batch['trajectory'])))
      ys.append(np.asarray(image_features(batch['image'], batch['box'])))
    k = params['correlations'].shape[0]
    mx, wx, my, wy, rho = fit_cca(np.concatenate(xs), np.concatenate(ys), self.model.cca_reg, k)
    fitted = {
      'trajectory': {'mean': mx, 'proj': wx},
      'image': {'mean': my, 'proj': wy},
      'correlations': rho,
    }
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), fitted), extra

  def variates(self, view: PyTree, features: jax.Array) -> jax.Array:
    """Canonical variates (B, k) of one view's features."""
    return (features - view['mean']) @ view['proj']

  def _embed(self, params: PyTree, u: jax.Array, query_side: bool) -> jax.Array:
    """The score's half for one view; the trajectory is `query_side` (it carries a_j)."""
    rho = jnp.minimum(params['correlations'], _MAX_RHO)
    if self.model.cca_score == 'cosine':
      return losses.l2_normalise(u * rho**2)
    a = rho / (1 - rho**2)
    b = rho**2 / (2 * (1 - rho**2))
    norm = -(b * u * u).sum(axis=-1, keepdims=True)
    one = jnp.ones_like(norm)
    return jnp.concatenate([a * u, one, norm] if query_side else [u, norm, one], axis=-1)

  def embed_trajectories(self, params: PyTree, extra: PyTree, trajectory: jax.Array) -> jax.Array:
    u = self.variates(params['trajectory'], self.features.trajectory(trajectory))
    return self._embed(params, u, query_side=True)

  def embed_images(
    self, params: PyTree, extra: PyTree, image: jax.Array, box: jax.Array
  ) -> jax.Array:
    v = self.variates(params['image'], self.features.image(image, box))
    return self._embed(params, v, query_side=False)

  def loss(self, params, extra, batch, rng, progress):
    u = self.variates(params['trajectory'], self.features.trajectory(batch['trajectory']))
    v = self.variates(params['image'], self.features.image(batch['image'], batch['box']))
    u = u - u.mean(axis=0)
    v = v - v.mean(axis=0)
    corr = (u * v).sum(0) / jnp.sqrt((u * u).sum(0) * (v * v).sum(0) + 1e-12)
    mean_corr = corr.mean()
    return -mean_corr, ({'loss': -mean_corr, 'batch_correlation': mean_corr}, extra)

  def optimizer(self, total_steps: int) -> optax.GradientTransformation:
    return optax.set_to_zero()  # Nothing is descended: `fit` solves for the parameters.
