"""Ranks and top@k on hand-made score matrices; near-duplicates."""

import numpy as np
import pytest

from trajcross_jax import evaluate


def test_ranks_hand_made():
  scores = np.array(
    [
      [0.9, 0.1, 0.2],  # own best: rank 1
      [0.5, 0.4, 0.6],  # two higher: rank 3
      [0.3, 0.8, 0.7],  # one higher: rank 2
    ]
  )
  np.testing.assert_array_equal(evaluate.ranks(scores), [1, 3, 2])
  np.testing.assert_array_equal(evaluate.ranks(scores.T), [1, 2, 1])


def test_ties_count_against_the_query():
  constant = np.zeros((4, 4))
  np.testing.assert_array_equal(evaluate.ranks(constant), [4, 4, 4, 4])
  m = evaluate.rank_metrics(evaluate.ranks(constant))
  assert m['top@1'] == 0.0
  scores = np.array([[1.0, 1.0], [0.0, 2.0]])
  np.testing.assert_array_equal(evaluate.ranks(scores), [2, 1])


def test_rank_metrics_values():
  r = np.array([1, 2, 6, 11])
  m = evaluate.rank_metrics(r)
  assert m['top@1'] == pytest.approx(25.0)
  assert m['top@5'] == pytest.approx(50.0)
  assert m['top@10'] == pytest.approx(75.0)
  assert m['top@15'] == pytest.approx(100.0)
  assert m['mean_rank'] == pytest.approx(5.0)
  assert m['median_rank'] == pytest.approx(4.0)
  assert m['mrr'] == pytest.approx(np.mean([1, 1 / 2, 1 / 6, 1 / 11]))


def test_retrieval_metrics_both_directions_and_near_duplicate_split():
  scores = np.array([[1.0, 0.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
  near = np.array([True, True, False])
  res = evaluate.retrieval_metrics(scores, near)
  assert res['traj2img']['top@1'] == pytest.approx(200 / 3)
  assert res['img2traj']['top@1'] == pytest.approx(200 / 3)  # Column 0: 2.0 beats 1.0.
  assert res['traj2img']['top@1_near_dup'] == pytest.approx(50.0)
  assert res['traj2img']['top@1_no_near_dup'] == pytest.approx(100.0)


def test_near_duplicates():
  base = np.stack([np.linspace(0, 5, 20), np.zeros(20)], axis=-1)
  trajs = np.stack([base, base + [0, 0.2], base + [0, 5.0]])
  np.testing.assert_array_equal(evaluate.near_duplicates(trajs, 0.3, chunk=2), [True, True, False])
