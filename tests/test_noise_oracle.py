"""The noise oracle: ranking by the exact likelihood of the hard rules' measurement noise."""

import numpy as np
import pytest

from configs import test as test_config
from trajcross_jax import evaluate, noise_oracle
from trajcross_jax.data import hard


def _tracks(n=200, seed=0):
  rng = np.random.default_rng(seed)
  return np.cumsum(rng.normal(0.3, 0.15, (n, 20, 2)), axis=1) + rng.uniform(0, 6, (n, 1, 2))


def test_the_covariance_is_that_of_the_observations():
  options = hard.HardOptions(noise_m=0.3, drift_m=0.5)
  draws = hard.unit_draws(np.random.default_rng(1), 20_000, 20, 4)
  error = hard.observe(np.zeros((20_000, 20, 2)), options, draws)
  sample = np.cov(error[..., 0], rowvar=False)
  np.testing.assert_allclose(sample, noise_oracle.covariance(20, options), atol=0.02)


def test_scores_are_posteriors_and_exact_observations_rank_first():
  tracks = _tracks(50)
  scores = noise_oracle.scores(tracks, tracks, hard.PAPER)
  np.testing.assert_allclose(np.exp(scores).sum(axis=1), 1.0)
  assert (evaluate.ranks(scores) == 1).all() and (evaluate.ranks(scores.T) == 1).all()


def test_it_sees_through_a_drift_that_fools_the_nearest_track():
  tracks = _tracks()
  options = hard.HardOptions(noise_m=0.05, drift_m=0.6)
  draws = hard.unit_draws(np.random.default_rng(2), len(tracks), 20, 4)
  observed = hard.observe(tracks, options, draws)
  oracle = evaluate.ranks(noise_oracle.scores(observed, tracks, options))
  nearest = -((observed[:, None] - tracks[None]) ** 2).sum(axis=(2, 3))
  # The drift is a smooth offset: the oracle discounts it where plain distance cannot.
  assert (oracle == 1).mean() > 0.95 > (evaluate.ranks(nearest) == 1).mean() + 0.2


def test_the_dot_oracle_reads_straight_tracks_exactly_and_a_step_apart_less_well():
  rng = np.random.default_rng(3)
  # Straight walks at constant speed: the line through the dots is the track itself.
  start, velocity = rng.uniform(0, 50, (60, 1, 2)), rng.normal(0, 0.5, (60, 1, 2))
  straight = start + velocity * np.arange(20)[None, :, None]
  options = hard.HardOptions(resample_step=1.5)
  phase = rng.uniform(size=60)
  scores = noise_oracle.dot_scores(straight, straight, options, phase)
  np.testing.assert_allclose(np.exp(scores).sum(axis=1), 1.0)
  assert (evaluate.ranks(scores) == 1).all() and (evaluate.ranks(scores.T) == 1).all()
  # One walker's windows one step apart, observed with noise and drift: the dots, whose times
  # are unknown, tell the windows apart less often than the exact track does.
  walk = _tracks(1, seed=4)[0]
  walk = np.concatenate([walk, walk[-1] + np.cumsum(rng.normal(0.3, 0.15, (40, 2)), axis=0)])
  windows = np.stack([walk[i : i + 20] for i in range(40)])
  options = hard.HardOptions(noise_m=0.1, drift_m=0.2, resample_step=1.5)
  top1 = {'track': [], 'dots': []}
  for seed in range(5):
    draws = hard.unit_draws(np.random.default_rng(seed), len(windows), 20, 4)
    observed = hard.observe(windows, options, draws)
    top1['track'].append(evaluate.ranks(noise_oracle.scores(observed, windows, options)) == 1)
    dots = noise_oracle.dot_scores(observed, windows, options, draws['phase'])
    top1['dots'].append(evaluate.ranks(dots) == 1)
  assert np.mean(top1['dots']) < np.mean(top1['track']) - 0.05
  with pytest.raises(ValueError, match='resampling rule'):
    noise_oracle.dot_scores(straight, straight, hard.HardOptions(), phase)


def test_it_scores_a_hard_dataset(tmp_path):
  config = test_config.get_config()
  config.data.name = 'synthetic_hard'
  config.data.data_dir = str(tmp_path)
  config.eval.split = 'test'
  results = noise_oracle.split_results(config)
  assert results['method'] == 'noise_oracle' and results['num_test'] == 48
  assert results['dataset'].startswith('trajcross/synthetic_hard-')
  for direction in ('traj2img', 'img2traj'):
    assert 0 < results[direction]['top@1'] <= 100
  dots = noise_oracle.split_results(config, dots=True)
  assert dots['method'] == 'dots_oracle' and dots['num_test'] == 48
  # Not knowing the dots' times costs something, never more than guessing would leave.
  for direction in ('traj2img', 'img2traj'):
    assert 100 / 48 < dots[direction]['top@1'] <= results[direction]['top@1']
