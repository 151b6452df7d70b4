"""Table I's baselines: hand-checked losses, each method's own rule, a tiny run through main."""

import functools
import importlib
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trajcross_jax import losses, parallel, train, validation
from trajcross_jax.data.normalisation import Normalisation
from trajcross_jax.methods import acmr, cca, corr_ae, get_method, moco

# A univ-sized scene frame (the models' inputs lie in about [2, 16] m).
FRAME = Normalisation(center=(8.0, 7.0), scale=8.0)

REPO = Path(__file__).resolve().parents[1]
NAMES = ('cca', 'moco', 'acmr', 'corr_ae', 'corr_cross_ae', 'dbrlm')

# Small networks for in-process checks and the tiny runs, per method (only fields it has).
_TINY_CNN = {
  'model.shape_channels': (8, 8),
  'model.branch_dim': 16,
  'model.box_embed': 8,
  'model.embed_dim': 16,
}
TINY = {
  'cca': {'model.image_pool': 8},
  'moco': {**_TINY_CNN, 'model.traj_raster_size': 16, 'model.moco_queue_size': 32},
  'acmr': {
    'model.image_pool': 8,
    'model.acmr_hidden': (16,),
    'model.embed_dim': 8,
    'model.disc_hidden': (16,),
  },
  'corr_ae': {'model.image_pool': 8, 'model.ae_hidden': (16,), 'model.code_dim': 8},
  'corr_cross_ae': {'model.image_pool': 8, 'model.ae_hidden': (16,), 'model.code_dim': 8},
  'dbrlm': {
    **_TINY_CNN,
    'model.point_embed': 8,
    'model.traj_conv_heights': (2, 3),
    'model.traj_conv_features': 8,
  },
}


def _config(name):
  config = importlib.import_module(f'configs.baselines.{name}').get_config()
  for field, value in TINY[name].items():
    group, key = field.split('.')
    config[group][key] = value
  return config


def _method(name, total_steps=100, **train_fields):
  config = _config(name)
  for key, value in train_fields.items():
    config.train[key] = value
  return get_method(config, FRAME, total_steps)


def _allclose_trees(a, b, **kw):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(x, y, **kw)


# CCA.


def test_cca_recovers_a_planted_linear_correlation():
  rng = np.random.default_rng(0)
  n, rho = 20_000, (0.9, 0.6)
  s = rng.normal(size=(n, 2))  # Two shared signals.
  x_lat = np.concatenate([s, rng.normal(size=(n, 3))], axis=1)
  y_lat = np.concatenate(
    [s * rho + np.sqrt(1 - np.square(rho)) * rng.normal(size=(n, 2)), rng.normal(size=(n, 4))],
    axis=1,
  )
  # Mixed by arbitrary invertible maps and shifted: CCA is invariant to both.
  x = x_lat @ rng.normal(size=(5, 5)) + 3.0
  y = y_lat @ rng.normal(size=(6, 6)) - 1.0
  mx, wx, my, wy, found = cca.fit_cca(x, y, reg=1e-6, k=4)
  np.testing.assert_allclose(found[:2], rho, atol=0.02)
  np.testing.assert_array_less(found[2:], 0.05)
  u, v = (x - mx) @ wx, (y - my) @ wy
  np.testing.assert_allclose(u.std(axis=0), 1.0, atol=0.02)  # Unit-variance variates.
  for j in range(2):
    np.testing.assert_allclose(np.corrcoef(u[:, j], v[:, j])[0, 1], rho[j], atol=0.02)
    # The j-th variate pair is the j-th planted signal, up to sign.
    np.testing.assert_allclose(abs(np.corrcoef(u[:, j], s[:, j])[0, 1]), 1.0, atol=0.01)


def test_cca_loss_is_minus_the_mean_batch_correlation(tiny_batch):
  method = _method('cca')
  params, extra = method.init(jax.random.key(0), tiny_batch)
  x = np.asarray(method.features.trajectory(tiny_batch['trajectory']))
  y = np.asarray(method.features.image(tiny_batch['image'], tiny_batch['box']))
  # Variate 0: the first point's x against the box's x_left; variate 1: a point's y against
  # -(y_top) (features -4 and -3 are the normalised box's x_left and y_top).
  params['trajectory']['proj'] = params['trajectory']['proj'].at[0, 0].set(1.0).at[3, 1].set(1.0)
  params['image']['proj'] = params['image']['proj'].at[-4, 0].set(2.0).at[-3, 1].set(-1.0)
  loss, (metrics, _) = method.loss(params, extra, tiny_batch, jax.random.key(0), 0.5)
  expected = np.mean([np.corrcoef(x[:, 0], y[:, -4])[0, 1], -np.corrcoef(x[:, 3], y[:, -3])[0, 1]])
  # The later variates are constant (zero projections) and count as correlation 0.
  k = params['correlations'].shape[0]
  np.testing.assert_allclose(float(loss), -expected * 2 / k, rtol=1e-4)
  np.testing.assert_allclose(float(metrics['batch_correlation']), expected * 2 / k, rtol=1e-4)


def test_cca_gaussian_score_is_the_pair_log_likelihood_ratio(tiny_batch):
  method = _method('cca')
  params, extra = method.init(jax.random.key(0), tiny_batch)
  rng = np.random.default_rng(1)
  for view in ('trajectory', 'image'):
    params[view]['proj'] = jnp.asarray(rng.normal(size=params[view]['proj'].shape) * 0.3)
  k = params['correlations'].shape[0]
  rho = np.linspace(0.9, 0.1, k)
  params['correlations'] = jnp.asarray(rho, jnp.float32)
  z_t = method.embed_trajectories(params, extra, tiny_batch['trajectory'])
  z_i = method.embed_images(params, extra, tiny_batch['image'], tiny_batch['box'])
  u = np.asarray(
    method.variates(params['trajectory'], method.features.trajectory(tiny_batch['trajectory']))
  )
  v = np.asarray(
    method.variates(params['image'], method.features.image(tiny_batch['image'], tiny_batch['box']))
  )
  # log N(u, v; rho) - log N(u) - log N(v), summed over pairs, without its constant.
  c = 1 - rho**2
  llr = (rho / c * u[:, None] * v[None]).sum(-1) - (rho**2 / (2 * c) * (u**2)).sum(-1)[:, None]
  llr = llr - (rho**2 / (2 * c) * (v**2)).sum(-1)[None]
  np.testing.assert_allclose(np.asarray(z_t @ z_i.T), llr, rtol=1e-4, atol=1e-4)


# MoCo.


def test_moco_queue_infonce_by_hand():
  q = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  k = jnp.array([[1.0, 0.0], [1.0, 0.0]])
  queue = jnp.array([[0.0, 1.0]])
  loss, acc = moco.queue_infonce(q, k, queue, temperature=0.5)
  # Query 0: positive 1 / 0.5 = 2 against the queue's 0; query 1: positive 0 against 2.
  expected = 0.5 * (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(2.0)))
  np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
  assert float(acc) == 0.5


def test_moco_queue_is_first_in_first_out():
  queue = jnp.arange(5.0)[:, None] * jnp.ones((1, 2))  # Rows 0..4, row 0 the newest.
  once = moco.enqueue(queue, jnp.full((2, 2), 10.0))
  np.testing.assert_array_equal(once[:, 0], [10, 10, 0, 1, 2])
  twice = moco.enqueue(once, jnp.full((2, 2), 20.0))
  np.testing.assert_array_equal(twice[:, 0], [20, 20, 10, 10, 0])


def test_moco_step_moves_the_key_encoder_by_the_momentum_rule(tiny_batch):
  # A window of the whole 10-step run: a 10-step time constant, m = 0.9.
  method = _method('moco', total_steps=10, moco_key_window=1.0)
  tx = method.optimizer(10)
  state = train.create_train_state(method, tx, jax.random.key(0), tiny_batch)
  # A key encoder apart from the query encoder, so that the rule is visible.
  other, _ = method.init(jax.random.key(1), tiny_batch)
  state = state.replace(extra=dict(state.extra, key=other))
  step = jax.jit(
    functools.partial(train.train_step, method=method, tx=tx, redraw_images=False, total_steps=10)
  )
  new, _ = step(state, tiny_batch, jax.random.key(2))
  # theta_k <- 0.9 theta_k + 0.1 theta_q, with the query encoder as the step found it.
  expected = jax.tree.map(lambda k, q: 0.9 * k + 0.1 * q, other, state.params)
  _allclose_trees(new.extra['key'], expected, rtol=1e-5, atol=1e-7)
  assert any(
    not np.allclose(a, b)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params), strict=True)
  )
  # The enqueued keys are the images' keys under the updated key encoder, at the front.
  keys = method.embed_images(
    state.params, {'key': expected}, tiny_batch['image'], tiny_batch['box']
  )
  b = len(keys)
  np.testing.assert_allclose(new.extra['queue'][:b], keys, rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(new.extra['queue'][b:], state.extra['queue'][:-b])


@pytest.mark.parametrize('steps', [390, 2340, 100_000])
def test_moco_key_momentum_scales_with_the_run(steps):
  # 0.43 of 2,340 steps is MoCo's own 0.999; whatever the run's length, the key encoder keeps
  # about exp(-1 / 0.43) = 9.8 % of its start by the end, where a fixed 0.999 would keep 68 %
  # of it after 390 steps and none after 100,000.
  m = _method('moco', total_steps=steps, moco_key_window=0.43).key_momentum()
  if steps == 2340:
    assert m == pytest.approx(0.999, abs=2e-5)
  assert m**steps == pytest.approx(np.exp(-1 / 0.43), rel=0.02)


def test_moco_key_window_under_a_step_copies_the_query_encoder():
  assert _method('moco', total_steps=10, moco_key_window=0.05).key_momentum() == 0.0


def test_moco_refuses_to_train_without_the_run_length(tiny_batch):
  config = _config('moco')
  method = get_method(config, FRAME)  # As evaluation builds it: embedding needs no length.
  params, extra = method.init(jax.random.key(0), tiny_batch)
  assert method.embed_trajectories(params, extra, tiny_batch['trajectory']).shape[0] == len(
    tiny_batch['trajectory']
  )
  with pytest.raises(ValueError, match='total_steps'):
    method.loss(params, extra, tiny_batch, jax.random.key(0), 0.5)


def test_moco_gradient_reaches_only_the_query_encoder(tiny_batch):
  method = _method('moco')
  params, extra = method.init(jax.random.key(0), tiny_batch)
  grads = jax.grad(lambda p, e: method.loss(p, e, tiny_batch, jax.random.key(0), 0.5)[0], (0, 1))(
    params, extra
  )
  assert sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads[0])) > 0
  assert all(float(jnp.abs(g).sum()) == 0 for g in jax.tree.leaves(grads[1]['key']))


# ACMR.


def test_acmr_triplet_by_hand():
  eye = jnp.eye(2)
  assert float(acmr.bidirectional_triplet(eye, eye, 0.3)) == 0.0  # Every margin is met.
  # Both images are [1, 0]: s = [[1, 1], [0, 0]], positives s_00 = 1 and s_11 = 0.
  images = jnp.array([[1.0, 0.0], [1.0, 0.0]])
  # Trajectory anchors: [0.3 - 1 + 1]_+ and [0.3 - 0 + 0]_+, mean 0.3. Image anchors:
  # image 0 against trajectory 1, [0.3 - 1 + 0]_+ = 0; image 1 against trajectory 0,
  # [0.3 - 0 + 1]_+ = 1.3; mean 0.65.
  np.testing.assert_allclose(float(acmr.bidirectional_triplet(eye, images, 0.3)), 0.95, rtol=1e-6)


def test_acmr_reversal_schedule():
  np.testing.assert_allclose(
    losses.reversal_schedule(jnp.array([0.0, 0.5, 1.0])),
    [
      0.0,
      2 / (1 + np.exp(-5)) - 1,
      2 / (1 + np.exp(-10)) - 1,
    ],
    rtol=1e-6,
  )


def test_the_train_step_tells_acmr_the_run_progress(tiny_batch):
  config = _config('acmr')
  config.train.adversarial_weight = 1.0
  method = get_method(config, FRAME)
  tx = method.optimizer(40)
  mesh = parallel.make_mesh()
  state = train.init_state(method, tx, config, mesh, tiny_batch)
  step = train.make_parallel_step(method, tx, False, 40, mesh, state)
  batch = parallel.global_batch(tiny_batch, mesh)
  rng = parallel.replicate(jax.random.key(0), mesh)
  state = state.replace(step=parallel.replicate(np.int32(10), mesh))
  _, metrics = step(state, batch, rng)
  expected = float(losses.reversal_schedule(jnp.asarray(10 / 40)))
  np.testing.assert_allclose(float(metrics['reversal_weight']), expected, rtol=1e-5)


def test_acmr_reversal_flips_the_projectors_gradient(tiny_batch):
  method = _method('acmr', adversarial_weight=0.5)
  params, extra = method.init(jax.random.key(0), tiny_batch)
  scale = 0.5 * (2 / (1 + np.exp(-10 * 0.3)) - 1)
  loss = functools.partial(method.loss, batch=tiny_batch, rng=jax.random.key(0), progress=0.3)
  _, (metrics, _) = loss(params, extra)
  np.testing.assert_allclose(float(metrics['reversal_weight']), scale, rtol=1e-5)

  def parts(params):
    z_t = method.embed_trajectories(params, extra, tiny_batch['trajectory'])
    z_i = method.embed_images(params, extra, tiny_batch['image'], tiny_batch['box'])
    d = lambda z: method.discriminator.apply({'params': params['discriminator']}, z)
    adv, _ = losses.modality_loss(d(z_t), d(z_i))
    return acmr.bidirectional_triplet(z_t, z_i, method.train.acmr_margin), adv

  grads = jax.grad(lambda p: loss(p, extra)[0])(params)
  g_tri = jax.grad(lambda p: parts(p)[0])(params)
  g_adv = jax.grad(lambda p: parts(p)[1])(params)
  # The classifier descends its loss; the projectors get its gradient times -scale.
  _allclose_trees(grads['discriminator'], g_adv['discriminator'], rtol=1e-4, atol=1e-7)
  moved = 0.0
  for g, gt, ga in zip(
    jax.tree.leaves(grads['encoders']),
    jax.tree.leaves(g_tri['encoders']),
    jax.tree.leaves(g_adv['encoders']),
    strict=True,
  ):
    np.testing.assert_allclose(g, gt - scale * ga, rtol=1e-4, atol=1e-6)
    moved += float(jnp.abs(ga).sum())
  assert moved > 0


# Corr-AE and Corr-Cross-AE.


def test_corr_ae_loss_by_hand():
  h_t, h_i = jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 0.0]])
  x, x_rec = jnp.array([[1.0, 1.0, 1.0]]), jnp.array([[1.0, 1.0, 0.0]])
  y, y_rec = jnp.array([[3.0]]), jnp.array([[0.0]])
  total, metrics = corr_ae.corr_ae_loss(h_t, h_i, x, x_rec, y, y_rec, alpha=0.25)
  # ||h_t - h_i||^2 = 5, ||x - x_rec||^2 = 1, ||y - y_rec||^2 = 9.
  np.testing.assert_allclose(float(total), 0.75 * (1 + 9) + 0.25 * 5)
  assert float(metrics['correlation']) == 5.0


def test_corr_ae_scores_rank_by_code_distance():
  rng = np.random.default_rng(0)
  h_t, h_i = rng.normal(size=(5, 3)), rng.normal(size=(6, 3))
  scores = (
    corr_ae.distance_embedding(jnp.asarray(h_t), True)
    @ corr_ae.distance_embedding(jnp.asarray(h_i), False).T
  )
  sq_dist = ((h_t[:, None] - h_i[None]) ** 2).sum(-1)
  np.testing.assert_allclose(np.asarray(scores), -sq_dist / 2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name,rebuilt_from', [('corr_ae', 'own'), ('corr_cross_ae', 'other')])
def test_corr_ae_rebuilds_each_modality_from_the_right_code(tiny_batch, name, rebuilt_from):
  method = _method(name)
  params, extra = method.init(jax.random.key(0), tiny_batch)

  def recon_traj(p):
    return method.loss(p, extra, tiny_batch, jax.random.key(0), 0.5)[1][0]['recon_traj']

  g = jax.grad(recon_traj)(params)['encoders']
  size = {k: sum(float(jnp.abs(x).sum()) for x in jax.tree.leaves(v)) for k, v in g.items()}
  source, other = ('trajectory', 'image') if rebuilt_from == 'own' else ('image', 'trajectory')
  assert size[source] > 0 and size[other] == 0


# DBRLM.


def test_dbrlm_loss_is_the_bidirectional_likelihood_of_the_matched_pairs(tiny_batch):
  gamma = 7.0
  method = _method('dbrlm', dbrlm_gamma=gamma)
  params, extra = method.init(jax.random.key(0), tiny_batch)
  loss, _ = method.loss(params, extra, tiny_batch, jax.random.key(0), 0.5)
  z_t = np.asarray(method.embed_trajectories(params, extra, tiny_batch['trajectory']), float)
  z_i = np.asarray(
    method.embed_images(params, extra, tiny_batch['image'], tiny_batch['box']), float
  )
  cos = (z_t @ z_i.T) / np.outer(np.linalg.norm(z_t, axis=1), np.linalg.norm(z_i, axis=1))
  logp_i_given_t = gamma * np.diag(cos) - np.log(np.exp(gamma * cos).sum(axis=1))
  logp_t_given_i = gamma * np.diag(cos) - np.log(np.exp(gamma * cos).sum(axis=0))
  expected = -0.5 * (logp_i_given_t.mean() + logp_t_given_i.mean())
  np.testing.assert_allclose(float(loss), expected, rtol=1e-4)


# Each through the entry point.


@pytest.mark.parametrize('name', NAMES)
def test_baseline_configs_hold_only_their_own_model_fields(name):
  config = importlib.import_module(f'configs.baselines.{name}').get_config()
  validation.validate(config)
  assert not {'wcnn_heights', 'traj_shape_branch', 'image_shape_pool'} & set(config.model)
  assert not config.rerank.enabled


def test_a_bad_baseline_field_is_named_by_validation():
  config = _config('cca')
  config.model.cca_score = 'angle'
  with pytest.raises(ValueError, match="config.model.cca_score='angle'"):
    validation.validate(config)
  config = _config('acmr')
  config.model.image_pool = 5
  with pytest.raises(ValueError, match='config.model.image_pool=5: must divide'):
    validation.validate(config)


@pytest.mark.parametrize('name', NAMES)
def test_tiny_run_through_main_trains_and_evaluates(tmp_path, synthetic_data_dir, name):
  overrides = {
    'data.name': 'synthetic',
    'data.train_size': 64,
    'data.test_size': 48,
    'data.data_dir': synthetic_data_dir,
    'train.batch_size': 16,
    'train.num_epochs': 1,
    'train.checkpoint_every_steps': 2,
    'eval.batch_size': 32,
    **TINY[name],
  }
  cmd = [
    sys.executable,
    '-m',
    'trajcross_jax.main',
    f'--config=configs/baselines/{name}.py',
    f'--workdir={tmp_path}',
    *(f'--config.{k}={v}' for k, v in overrides.items()),  # Tuples as '(8, 8)'.
  ]
  subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True, timeout=300)
  results = json.loads((tmp_path / 'eval' / 'results.json').read_text())
  assert results['step'] == 4 and results['num_test'] == 48
  for direction in ('traj2img', 'img2traj'):
    r = results[direction]
    assert 0 <= r['top@1'] <= r['top@5'] <= r['top@10'] <= 100
  # Gradient methods log their steps; CCA is fitted in closed form and logs none.
  assert (tmp_path / 'metrics.jsonl').exists() == (name != 'cca')
