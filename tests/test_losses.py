"""Losses on small hand-computed cases, and the gradient reversal."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trajcross_jax import losses


def _xent(logits, label):
  return -logits[label] + np.log(np.exp(logits).sum())


@pytest.mark.parametrize('scale', [1.0, 10.0])
def test_infonce_matches_hand_computation(scale):
  z_t = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
  z_i = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
  unit = lambda z: z / np.linalg.norm(z, axis=1, keepdims=True)
  logits = scale * unit(z_t) @ unit(z_i).T
  t2i = np.mean([_xent(logits[i], i) for i in range(3)])
  i2t = np.mean([_xent(logits[:, i], i) for i in range(3)])
  loss, metrics = losses.infonce(jnp.asarray(z_t), jnp.asarray(z_i), jnp.asarray(scale))
  np.testing.assert_allclose(loss, 0.5 * (t2i + i2t), rtol=1e-5)
  np.testing.assert_allclose(metrics['batch_acc_t2i'], np.mean(logits.argmax(1) == np.arange(3)))


def test_infonce_is_low_for_matched_and_high_for_swapped_pairs():
  z = jnp.eye(4)
  good, _ = losses.infonce(z, z, jnp.asarray(20.0))
  bad, _ = losses.infonce(z, z[::-1], jnp.asarray(20.0))
  assert good < 0.01
  assert bad > 10.0


def test_modality_loss_hand_computed():
  logits_t = jnp.array([2.0, -1.0])
  logits_i = jnp.array([0.5])
  sig = lambda x: 1 / (1 + np.exp(-x))
  expected_t = -np.mean(np.log(sig(np.array([2.0, -1.0]))))
  expected_i = -np.log(1 - sig(0.5))
  loss, acc = losses.modality_loss(logits_t, logits_i)
  np.testing.assert_allclose(loss, 0.5 * (expected_t + expected_i), rtol=1e-5)
  np.testing.assert_allclose(acc, 0.5 * (0.5 + 0.0))


def test_gradient_reversal_flips_and_scales_gradient():
  f = lambda x: jnp.sum(losses.gradient_reversal(x, 0.3) * jnp.array([1.0, 2.0]))
  x = jnp.array([5.0, 7.0])
  np.testing.assert_allclose(f(x), 19.0)
  np.testing.assert_allclose(jax.grad(f)(x), [-0.3, -0.6])


def test_similarity_is_cosine():
  s = losses.similarity(jnp.array([[3.0, 4.0]]), jnp.array([[1.0, 0.0], [0.0, -2.0]]))
  np.testing.assert_allclose(s, [[0.6, -0.8]], rtol=1e-5)


def test_modality_loss_smoothed_targets_hand_computed():
  logits_t, logits_i = jnp.array([2.0, -1.0]), jnp.array([0.5])
  s = 0.2
  bce = lambda x, y: np.log1p(np.exp(x)) - y * x
  want = 0.5 * ((bce(2.0, 0.9) + bce(-1.0, 0.9)) / 2 + bce(0.5, 0.1))
  loss, acc = losses.modality_loss(logits_t, logits_i, smoothing=s)
  np.testing.assert_allclose(loss, want, rtol=1e-6)
  assert acc == 0.25  # Accuracy does not depend on the targets.


def test_input_gradient_penalty_of_a_linear_classifier_is_its_squared_norm():
  w = jnp.array([3.0, -4.0])
  z = jax.random.normal(jax.random.key(0), (5, 2))
  penalty = losses.input_gradient_penalty(lambda x: x @ w, z)
  np.testing.assert_allclose(penalty, 25.0, rtol=1e-6)
  # The embeddings are stopped: the penalty does not move them.
  g = jax.grad(lambda z: losses.input_gradient_penalty(lambda x: jnp.sum(x**2, -1), z))(z)
  assert not np.any(g)


def test_gradient_reversal_takes_a_traced_scale():
  f = jax.jit(jax.grad(lambda x, s: jnp.sum(losses.gradient_reversal(x, s) * 2.0)))
  x = jnp.array([1.0, -2.0])
  np.testing.assert_array_equal(losses.gradient_reversal(x, 0.3), x)
  np.testing.assert_allclose(f(x, 0.3), [-0.6, -0.6], rtol=1e-6)
