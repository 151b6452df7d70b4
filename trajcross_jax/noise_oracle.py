"""The hard protocol's ceiling under measurement noise: rank by the exact likelihood.

A hard dataset's trajectory is a noisy observation o of the track t its image shows
(data/hard.py `observe`): per axis, o - t = noise_m e + drift_m (a + tau b), with e, a, b standard
normal and tau = k / (M - 1), so o - t ~ N(0, C) with

  C = noise_m^2 I + drift_m^2 (1 1^T + tau tau^T).

An oracle that knows every image's true track t_j and this model scores a pair by the posterior
that o_i was observed from t_j, all tracks equally likely a priori:

  score(i, j) = log N(o_i; t_j, C) - log sum_j' N(o_i; t_j', C).

Per trajectory (a row) this ranks images as the likelihood does, which is the Bayes ranking; per
image (a column) the normalisation keeps a trajectory that is likely under many tracks from
outranking the one that is likely only under this one. No method that sees images can know more
than the oracle (it reads the exact track, where an image shows pixels, dots, blur and other
paths), so its top@k bounds what the noise rules allow whatever the renderer, and a noise size
at which even it fails makes a protocol that measures the noise rather than the model. Both
directions are ranked from the one score matrix with evaluate.py's metrics.
"""

import time
from typing import Any

import ml_collections
import numpy as np
from scipy import special

from trajcross_jax import evaluate, parallel
from trajcross_jax.data import hard as hard_lib
from trajcross_jax.data import pipeline

# A floor on the noise, metres: float32 storage of positions of tens of metres is good to about
# 1e-5 m, so without any noise rule an observation matches its own track and no other.
NOISE_FLOOR_M = 1e-3


def covariance(points: int, options: hard_lib.HardOptions) -> np.ndarray:
  """C (M, M): the covariance of o - t along one axis under `options` (see the module doc)."""
  tau = np.arange(points) / max(points - 1, 1)
  drift = np.ones((points, points)) + np.outer(tau, tau)
  noise = max(options.noise_m, NOISE_FLOOR_M) ** 2
  return noise * np.eye(points) + options.drift_m**2 * drift


def scores(observed: np.ndarray, tracks: np.ndarray, options: hard_lib.HardOptions) -> np.ndarray:
  """(N_o, N_t) log posteriors that observation i (N_o, M, 2) came from track j (N_t, M, 2)."""
  observed, tracks = np.asarray(observed, np.float64), np.asarray(tracks, np.float64)
  whiten = _whitening(observed.shape[1], options)
  log_likelihood = _log_likelihood(_whitened(whiten, observed), _whitened(whiten, tracks))
  return log_likelihood - special.logsumexp(log_likelihood, axis=1, keepdims=True)


def _whitening(points: int, options: hard_lib.HardOptions) -> np.ndarray:
  """(M, M) the inverse Cholesky factor of C: it turns the Gaussian's exponent into a squared
  distance."""
  return np.linalg.inv(np.linalg.cholesky(covariance(points, options)))


def _whitened(whiten: np.ndarray, points: np.ndarray) -> np.ndarray:
  """(N, M, 2) points -> (N, 2M), each axis whitened along the window."""
  return np.einsum('km,nmd->nkd', whiten, points).reshape(len(points), -1)


def _log_likelihood(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """(N_a, N_b) Gaussian log likelihoods (up to a constant) between whitened rows."""
  return -0.5 * ((a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2 * a @ b.T)


def dot_scores(
  observed: np.ndarray,
  tracks: np.ndarray,
  options: hard_lib.HardOptions,
  phase: np.ndarray,
  grid: int = 24,
) -> np.ndarray:
  """(N_o, N_t) log posteriors that observation i came from the track whose resampled points
  ("dots") image j shows, for an oracle that reads those dots exactly but not their times.

  The resampling rule (hard.resample, `options.resample_step` > 0) puts image j's dots at times
  (phase_j + k) * step of its track; this oracle knows the dots, not phase_j. For each phase on a
  uniform grid it takes the track at the observation's times to be the line through the dots
  (extended straight past the first and last), scores it as `scores` does, and averages the
  likelihoods over the grid. The line between dots is an approximation where the track bends, so
  the exact posterior would rank a little better: a measure of what the dots leave to know, not a
  strict bound.
  """
  if options.resample_step <= 0:
    raise ValueError('dot_scores needs the resampling rule (options.resample_step > 0)')
  observed, tracks = np.asarray(observed, np.float64), np.asarray(tracks, np.float64)
  m = observed.shape[1]
  dots = hard_lib.resample(tracks, options.resample_step, np.asarray(phase, np.float64))
  whiten = _whitening(m, options)
  a = _whitened(whiten, observed)
  total = None
  for p in (np.arange(grid) + 0.5) / grid:
    times = np.clip((p + np.arange(dots.shape[1])) * options.resample_step, 0, m - 1)
    keep = np.concatenate([[True], np.diff(times) > 0])  # Dots held at the last point: one.
    if keep.sum() < 2:
      raise ValueError(f'{m} points resampled every {options.resample_step} give one dot')
    ll = _log_likelihood(a, _whitened(whiten, _through(dots[:, keep], times[keep], m)))
    total = ll if total is None else np.logaddexp(total, ll)
  log_likelihood = total - np.log(grid)
  return log_likelihood - special.logsumexp(log_likelihood, axis=1, keepdims=True)


def _through(dots: np.ndarray, times: np.ndarray, points: int) -> np.ndarray:
  """(N, points, 2): the line through dots (N, K, 2) at increasing `times` (K,), read at times
  0 .. points - 1, extended straight past both ends."""
  t = np.arange(points, dtype=np.float64)
  lo = np.clip(np.searchsorted(times, t, side='right') - 1, 0, len(times) - 2)
  frac = ((t - times[lo]) / (times[lo + 1] - times[lo]))[None, :, None]
  return dots[:, lo] + frac * (dots[:, lo + 1] - dots[:, lo])


def split_data(
  config: ml_collections.ConfigDict, features: tuple[str, ...] = ()
) -> tuple[dict[str, np.ndarray], hard_lib.HardOptions]:
  """config.eval.split of config.data (its dataset built if need be) as arrays: the model's
  features, `features`, and the true tracks as 'track' (a hard dataset's own feature, else the
  trajectories: no noise rule applies); with the dataset's hard rules."""
  builder = parallel.chief_first(pipeline.prepare, config.data)
  has_track = 'track' in builder.info.features
  features = pipeline.MODEL_FEATURES + features + (('track',) if has_track else ())
  source = pipeline.run_split(builder, config.eval.split, config.data, features=features)
  data = source.get_batch(np.arange(len(source)))
  if not has_track:
    data['track'] = data['trajectory']
  return data, pipeline.hard_options(config.data)


def oracle_scores(
  data: dict[str, np.ndarray], options: hard_lib.HardOptions, seed: int, dots: bool = False
) -> np.ndarray:
  """The (N, N) scores of `scores` on a split's arrays (split_data), or with `dots` those of
  `dot_scores`: the oracle that reads each image's resampled dots but not their phase.

  The phases are drawn afresh from `seed` rather than read back from the builder's streams: a
  phase is a uniform draw independent of everything the oracle reads, so its results have the
  same distribution (on univ_hard's test split the builder's own phases give top@1 85.2 /
  88.9, these 84.7 / 88.7).
  """
  if dots:
    n = len(data['track'])
    phase = np.random.default_rng([seed, n]).uniform(size=n)
    return dot_scores(data['trajectory'], data['track'], options, phase)
  return scores(data['trajectory'], data['track'], options)


def split_results(config: ml_collections.ConfigDict, dots: bool = False) -> dict[str, Any]:
  """The oracle (with `dots`, the dots oracle) on config.eval.split of config.data, scored by
  every metric; 'seconds' is the scoring's time."""
  data, options = split_data(config)
  start = time.perf_counter()
  matrix = oracle_scores(data, options, config.seed, dots)
  seconds = time.perf_counter() - start
  near_dup = evaluate.near_duplicates(data['trajectory'], config.eval.near_duplicate_m)
  return {
    'method': 'dots_oracle' if dots else 'noise_oracle',
    'split': config.eval.split,
    'dataset': pipeline.get_builder(config.data).info.full_name,
    'seconds': seconds,
    **evaluate.score_metrics(matrix, near_dup),
  }
