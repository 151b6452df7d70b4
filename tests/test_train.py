"""The train step: gradient signs of the minimax game, learning, and 2 devices = 1 device."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from trajcross_jax import losses, parallel, train
from trajcross_jax.data import hard
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import get_method

# A univ-sized scene frame (the models' inputs lie in about [2, 16] m).
FRAME = Normalisation(center=(8.0, 7.0), scale=8.0)


def _setup(config, batch):
  method = get_method(config, FRAME)
  tx = method.optimizer(100)
  state = train.create_train_state(method, tx, jax.random.key(0), batch)
  return method, tx, state


@pytest.mark.parametrize(
  'schedule, smoothing, penalty, progress',
  [
    ('constant', 0.0, 0.0, 0.5),
    ('dann', 0.0, 0.0, 0.0),
    ('dann', 0.0, 0.0, 0.3),
    ('constant', 0.2, 0.0, 0.5),
    ('constant', 0.0, 2.0, 0.5),
  ],
)
def test_adversary_options_give_each_player_its_objective(
  tiny_batch, schedule, smoothing, penalty, progress
):
  config = test_config.get_config()
  config.train.adversarial_weight = 0.25
  config.train.adversarial_schedule = schedule
  config.train.disc_label_smoothing = smoothing
  config.train.disc_gradient_penalty = penalty
  method, _, state = _setup(config, tiny_batch)
  params = state.params
  weight = 0.25 * (2 / (1 + np.exp(-10 * progress)) - 1 if schedule == 'dann' else 1.0)

  def parts(params):
    z_t = method.embed_trajectories(params, {}, tiny_batch['trajectory'])
    z_i = method.embed_images(params, {}, tiny_batch['image'], tiny_batch['box'])
    con, _ = losses.infonce(z_t, z_i, method.logit_scale(params))
    d = lambda z: method.discriminator.apply({'params': params['discriminator']}, z)
    # Smoothed targets written out: BCE(l, y) = softplus(l) - y * l.
    y = 1 - smoothing / 2
    adv = 0.5 * (
      jnp.mean(jax.nn.softplus(d(z_t)) - y * d(z_t))
      + jnp.mean(jax.nn.softplus(d(z_i)) - (1 - y) * d(z_i))
    )
    # The penalty from each row's own logit gradient (vmap), on stopped embeddings.
    z = jax.lax.stop_gradient(jnp.concatenate([z_t, z_i]))
    rows = jax.vmap(jax.grad(lambda v: d(v[None])[0]))(z)
    return con, adv, jnp.mean(jnp.sum(rows**2, axis=-1))

  loss = lambda p: method.loss(p, {}, tiny_batch, jax.random.key(1), progress)[0]
  grads = jax.grad(loss)(params)
  g_con, g_adv, g_pen = (jax.grad(lambda p, i=i: parts(p)[i])(params) for i in range(3))
  for g, ga, gp in zip(
    *(jax.tree.leaves(x['discriminator']) for x in (grads, g_adv, g_pen)), strict=True
  ):
    np.testing.assert_allclose(g, ga + penalty * gp, rtol=1e-4, atol=1e-6)
  # The encoders descend contrastive - weight * adversarial: they ascend the classifier's loss,
  # and get no share of the penalty (it is computed on stopped embeddings).
  moved = 0.0
  for g, gc, ga in zip(
    *(jax.tree.leaves(x['encoders']) for x in (grads, g_con, g_adv)), strict=True
  ):
    np.testing.assert_allclose(g, gc - weight * ga, rtol=1e-4, atol=1e-6)
    moved += float(jnp.abs(ga).sum())
  assert moved > 0  # The classifier's loss depends on the encoders: the check is not vacuous.
  _, (metrics, _) = method.loss(params, {}, tiny_batch, jax.random.key(1), progress)
  np.testing.assert_allclose(metrics['reversal_weight'], weight, rtol=1e-6)
  assert ('disc_penalty' in metrics) == bool(penalty)


def test_the_classifier_cosine_schedule_ends_at_rest(tiny_batch):
  config = test_config.get_config()
  config.train.disc_schedule = 'cosine'
  method = get_method(config, FRAME)
  tx = method.optimizer(10)
  params, _ = method.init(jax.random.key(0), tiny_batch)
  opt_state = tx.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  sizes = []
  for _ in range(10):
    updates, opt_state = tx.update(grads, opt_state, params)
    sizes.append(max(float(jnp.abs(u).max()) for u in jax.tree.leaves(updates['discriminator'])))
  np.testing.assert_allclose(sizes[0], config.train.disc_learning_rate, rtol=1e-3)
  assert sizes[-1] < 0.05 * sizes[0]  # Constant would keep every step at the full rate.


def test_nogan_has_no_discriminator_and_no_adversarial_term(tiny_batch):
  config = test_config.get_config()
  config.model.adversarial = False
  method, _, state = _setup(config, tiny_batch)
  assert 'discriminator' not in state.params
  _, (metrics, _) = method.loss(state.params, {}, tiny_batch, jax.random.key(0), 0.5)
  assert 'adversarial' not in metrics


def test_steps_are_finite_and_lower_the_loss(tiny_batch):
  config = test_config.get_config()
  config.train.learning_rate = 3e-3
  method, tx, state = _setup(config, tiny_batch)
  step = jax.jit(
    functools.partial(train.train_step, method=method, tx=tx, redraw_images=False, total_steps=100)
  )
  rng = jax.random.key(0)
  first = None
  for _ in range(15):
    state, metrics = step(state, tiny_batch, rng)
    assert np.isfinite(float(metrics['loss']))
    first = float(metrics['contrastive']) if first is None else first
  assert int(state.step) == 15
  assert float(metrics['contrastive']) < first - 0.2


def test_a_step_with_redrawn_images_is_finite(tiny_batch):
  config = test_config.get_config()
  method, tx, state = _setup(config, tiny_batch)
  step = jax.jit(
    functools.partial(train.train_step, method=method, tx=tx, redraw_images=True, total_steps=100)
  )
  state, metrics = step(state, tiny_batch, jax.random.key(0))
  assert np.isfinite(float(metrics['loss']))


def test_a_hard_step_draws_its_pairs_from_the_track(tiny_batch):
  config = test_config.get_config()
  method, tx, state = _setup(config, tiny_batch)
  step = jax.jit(
    functools.partial(
      train.train_step,
      method=method,
      tx=tx,
      redraw_images=True,
      total_steps=100,
      hard=hard.HARD,
    )
  )
  track = tiny_batch['trajectory']
  crowd = np.full((len(track), hard.CROWD_SLOTS) + track.shape[1:], np.nan, np.float32)
  crowd[:, 0] = track + 0.5  # Another pedestrian beside each one.
  batch = dict(tiny_batch, track=track, crowd=crowd)
  _, metrics = step(state, batch, jax.random.key(0))
  assert np.isfinite(float(metrics['loss']))
  # The stored trajectory is replaced by a fresh observation of the track: another stored
  # trajectory gives the same step; another track, or another crowd, does not.
  other = dict(batch, trajectory=batch['trajectory'][::-1])
  _, same = step(state, other, jax.random.key(0))
  assert float(same['loss']) == float(metrics['loss'])
  for changed in ({'track': track + 1.0}, {'crowd': crowd - 1.0}):
    _, different = step(state, dict(batch, **changed), jax.random.key(0))
    assert float(different['loss']) != float(metrics['loss']), changed


@pytest.mark.parametrize('redraw', [False, True])
def test_two_devices_equal_one_device(tiny_batch, redraw):
  assert jax.device_count() >= 2, 'conftest forces 2 host devices'
  config = test_config.get_config()
  method = get_method(config, FRAME)
  tx = method.optimizer(100)
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:2]):
    mesh = parallel.make_mesh(devices)
    state = train.init_state(method, tx, config, mesh, tiny_batch)
    p_step = train.make_parallel_step(method, tx, redraw, 100, mesh, state)
    rng = jax.device_put(jax.random.key(3), parallel.replicated(mesh))
    for _ in range(3):
      state, metrics = p_step(state, parallel.global_batch(tiny_batch, mesh), rng)
    results.append((jax.device_get(state.params), float(metrics['loss'])))
  (p1, l1), (p2, l2) = results
  # Same function of the same global batch; only the order of float32 sums may differ.
  np.testing.assert_allclose(l1, l2, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_batch_that_does_not_divide_over_devices_is_a_clear_error():
  mesh = parallel.make_mesh(jax.devices()[:2])
  with pytest.raises(ValueError, match='does not divide over 2 devices'):
    parallel.check_batch_size(7, mesh, 'train.batch_size')
