"""Batch order: uniform and neighbour-grouped epochs, purity in (seed, step), process slices."""

import numpy as np
import pytest

from configs import test as test_config
from trajcross_jax import validation
from trajcross_jax.data import pipeline


def _clusters(num_clusters: int, per_cluster: int, seed: int = 0) -> np.ndarray:
  """Trajectories in tight clusters 100 m apart, shuffled: (num_clusters * per_cluster, 20, 2)."""
  rng = np.random.default_rng(seed)
  base = np.cumsum(rng.normal(0, 0.3, (num_clusters, 1, 20, 2)), axis=2)
  base += 100.0 * np.arange(num_clusters)[:, None, None, None]
  trajs = base + rng.normal(0, 0.01, (num_clusters, per_cluster, 20, 2))
  trajs = trajs.reshape(-1, 20, 2)
  perm = rng.permutation(len(trajs))
  cluster_of = np.repeat(np.arange(num_clusters), per_cluster)[perm]
  return trajs[perm], cluster_of


def test_nearest_neighbours_match_brute_force_nearest_first():
  trajs = np.random.default_rng(0).normal(0, 1, (50, 20, 2))
  got = pipeline.nearest_neighbours(trajs, 5, chunk=7)
  rms = np.sqrt(((trajs[:, None] - trajs[None]) ** 2).sum(-1).mean(-1))
  np.fill_diagonal(rms, np.inf)
  np.testing.assert_array_equal(got, np.argsort(rms, axis=1)[:, :5])


@pytest.mark.parametrize('k', [0, 50])
def test_nearest_neighbours_refuse_a_bad_k(k):
  with pytest.raises(ValueError, match='k must be in'):
    pipeline.nearest_neighbours(np.zeros((50, 20, 2)), k)


def test_neighbour_groups_keep_clusters_together_and_place_everyone_once():
  trajs, cluster_of = _clusters(6, 4)
  neighbours = pipeline.nearest_neighbours(trajs, 3)
  order = pipeline.neighbour_groups(np.random.default_rng(1), neighbours)
  np.testing.assert_array_equal(np.sort(order), np.arange(len(trajs)))
  blocks = cluster_of[order].reshape(6, 4)
  assert (blocks == blocks[:, :1]).all(), blocks


def test_grouped_batches_hold_whole_clusters_and_uniform_ones_do_not():
  trajs, cluster_of = _clusters(8, 4)
  grouped = pipeline.BatchOrder(32, 8, seed=3, neighbours=pipeline.nearest_neighbours(trajs, 3))
  uniform = pipeline.BatchOrder(32, 8, seed=3)
  for step in range(8):  # Two epochs.
    counts = np.bincount(cluster_of[grouped.indices(step)], minlength=8)
    assert sorted(counts[counts > 0]) == [4, 4], counts
  spread = [np.bincount(cluster_of[uniform.indices(s)]).max() for s in range(8)]
  assert min(spread) < 4


@pytest.mark.parametrize('grouped', [False, True])
def test_batch_order_is_a_pure_function_of_seed_and_step(grouped):
  trajs, _ = _clusters(10, 5)
  neighbours = pipeline.nearest_neighbours(trajs, 4) if grouped else None
  walked = pipeline.BatchOrder(50, 10, seed=7, neighbours=neighbours)
  seen = [walked.indices(s) for s in range(15)]  # Three epochs, in order.
  for s in (14, 3, 9):  # A fresh order (a resumed run) asked out of order.
    fresh = pipeline.BatchOrder(50, 10, seed=7, neighbours=neighbours)
    np.testing.assert_array_equal(fresh.indices(s), seen[s])
  for epoch in range(3):
    np.testing.assert_array_equal(
      np.sort(np.concatenate(seen[5 * epoch : 5 * epoch + 5])), range(50)
    )
  assert not np.array_equal(seen[0], seen[5]), 'each epoch draws a new order'
  other_seed = pipeline.BatchOrder(50, 10, seed=8, neighbours=neighbours)
  assert not np.array_equal(other_seed.indices(0), seen[0])


def test_process_slices_make_up_the_global_batch():
  order = pipeline.BatchOrder(40, 8, seed=0)
  parts = [order.indices(5, process_index=p, process_count=4) for p in range(4)]
  assert all(len(p) == 2 for p in parts)
  np.testing.assert_array_equal(np.concatenate(parts), order.indices(5))


def test_batch_order_refuses_bad_sizes():
  with pytest.raises(ValueError, match='larger than the split'):
    pipeline.BatchOrder(10, 16, seed=0)
  with pytest.raises(ValueError, match='neighbours cover 9 examples, the split has 10'):
    pipeline.BatchOrder(10, 4, seed=0, neighbours=np.zeros((9, 2), np.int64))


@pytest.mark.parametrize('group', [0, -1, 17])
def test_a_bad_neighbour_group_is_a_config_error(group):
  config = test_config.get_config()
  config.train.neighbour_group = group
  with pytest.raises(ValueError, match='config.train.neighbour_group'):
    validation.validate(config)
