"""Losses: the contrastive objective (Eq. (10)-(11)) and the adversarial modality loss."""

import jax
import jax.numpy as jnp
import optax


def l2_normalise(z: jnp.ndarray, eps: float = 1e-6) -> jnp.ndarray:
  """Unit-norm rows, so that similarity is cosine (then scaled by the temperature)."""
  return z / jnp.sqrt(jnp.sum(z * z, axis=-1, keepdims=True) + eps)


def similarity(z_traj: jnp.ndarray, z_img: jnp.ndarray) -> jnp.ndarray:
  """The retrieval score: dot product of the normalised embeddings, (Nt, Ni)."""
  return l2_normalise(z_traj) @ l2_normalise(z_img).T


def infonce(
  z_traj: jnp.ndarray, z_img: jnp.ndarray, logit_scale: jnp.ndarray
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
  """Bidirectional InfoNCE over the batch (Eq. (10)-(11) as the NCE loss the paper cites).

  Row i of each side is the positive of row i of the other; every other row of the batch is a
  negative, in both directions. Under jit over a device mesh the batch is the global batch, so
  negatives span all devices.

  Args:
    z_traj: (B, D) trajectory embeddings.
    z_img: (B, D) image embeddings.
    logit_scale: scalar, 1 / temperature.

  Returns:
    (loss, metrics) with the mean of both directions' cross-entropies and in-batch top-1
    accuracies.
  """
  logits = logit_scale * similarity(z_traj, z_img)
  labels = jnp.arange(logits.shape[0])
  t2i = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  i2t = optax.softmax_cross_entropy_with_integer_labels(logits.T, labels).mean()
  metrics = {
    'batch_acc_t2i': (logits.argmax(axis=1) == labels).mean(),
    'batch_acc_i2t': (logits.argmax(axis=0) == labels).mean(),
  }
  return 0.5 * (t2i + i2t), metrics


def modality_loss(
  logits_traj: jnp.ndarray, logits_img: jnp.ndarray, smoothing: float = 0.0
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Binary cross-entropy of the modality classifier: trajectory = 1, image = 0.

  smoothing: label smoothing; the targets become 1 - smoothing / 2 and smoothing / 2, so the
  loss is least at |logit| = log((2 - smoothing) / smoothing) and rises beyond it: a classifier
  that is already right is pulled back instead of growing ever more confident.

  Returns (loss averaged over both modalities, classifier accuracy).
  """
  high = 1.0 - 0.5 * smoothing
  bce = optax.sigmoid_binary_cross_entropy
  loss_t = bce(logits_traj, jnp.full_like(logits_traj, high)).mean()
  loss_i = bce(logits_img, jnp.full_like(logits_img, 1.0 - high)).mean()
  acc = 0.5 * ((logits_traj > 0).mean() + (logits_img <= 0).mean())
  return 0.5 * (loss_t + loss_i), acc


def input_gradient_penalty(classify, z: jnp.ndarray) -> jnp.ndarray:
  """Mean squared norm of the classifier's logit gradient at the embeddings z, (B, D).

  A zero-centred gradient penalty (Mescheder et al. 2018's R1, on both modalities): it keeps the
  classifier's logit smooth around the embeddings, so it cannot grow arbitrarily confident.
  z is stopped, so the penalty trains the classifier only, never the encoders. The gradient of
  the summed logits is each row's own gradient because the classifier treats rows apart (no
  batch statistics), as models/discriminator.py does.
  """
  grad = jax.grad(lambda x: classify(x).sum())(jax.lax.stop_gradient(z))
  return jnp.sum(grad * grad, axis=-1).mean()


def reversal_schedule(progress: jax.Array) -> jax.Array:
  """lambda_p = 2 / (1 + exp(-10 p)) - 1 over training progress p in [0, 1] (Ganin et al.)."""
  return 2.0 / (1.0 + jnp.exp(-10.0 * progress)) - 1.0


def reversal_weight(weight: float, schedule: str, progress: jax.Array) -> float | jax.Array:
  """The gradient reversal's weight at `progress`: `weight` ('constant'), or `weight` ramped up
  by reversal_schedule ('dann'), as config.train.adversarial_schedule names it."""
  return weight * reversal_schedule(progress) if schedule == 'dann' else weight


@jax.custom_vjp
def gradient_reversal(x: jax.Array, scale: float | jax.Array) -> jax.Array:
  """Identity forward (exactly x); backward multiplies the gradient by -scale.

  The minimax game in one backward pass: the classifier descends the adversarial loss, the
  encoders below this point ascend it with weight `scale`, which may be traced (a schedule
  over the run's progress). No gradient flows to scale.
  """
  return x


def _reversal_fwd(x, scale):
  return x, scale


def _reversal_bwd(scale, g):
  return -scale * g, jnp.zeros_like(scale)


gradient_reversal.defvjp(_reversal_fwd, _reversal_bwd)
