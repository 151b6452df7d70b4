"""The re-draw reference: retrieval by drawing each trajectory in each image's box."""

import json

import numpy as np

from configs import test as test_config
from trajcross_jax import main, render_reference
from trajcross_jax.data import render


def test_fits_needs_every_point_inside_the_box():
  traj = np.array([[[1.0, 1.0], [2.0, 3.0]]])
  boxes = np.array(
    [
      [0.0, 4.0, 3.0, 0.0],  # Holds it.
      [1.0, 3.0, 2.0, 1.0],  # Its own bounding box: on the edges still fits.
      [1.5, 4.0, 3.0, 0.0],  # x_left past the first point.
      [0.0, 2.5, 3.0, 0.0],  # y_top below the second point.
    ]
  )
  assert render_reference.fits(traj, boxes).tolist() == [[True, True, False, False]]


def test_its_own_drawing_is_the_closest(tiny_batch):
  traj, image, box = (tiny_batch[k] for k in ('trajectory', 'image', 'box'))
  own = np.asarray(render_reference.pair_distances(traj, image, box))
  # The same rasteriser in float32 against the builder's float64: a rare pixel one level off.
  assert own.max() < 0.05
  other = np.asarray(render_reference.pair_distances(traj, image[::-1], box[::-1]))
  assert (other[own != other] > 1.0).all()
  # A width the protocol did not draw with is farther than the one it did.
  windows = np.stack([box[:, 0], box[:, 3], box[:, 2] - box[:, 0]], -1)
  thick = render.to_uint8(render.render_polylines(traj, windows, np.full(8, 6.0)))[..., None]
  assert (np.asarray(render_reference.pair_distances(traj, thick, box)) > own + 1.0).all()


def test_scores_rank_every_own_pair_first(tiny_batch):
  results = render_reference.reference_metrics(tiny_batch, near_duplicate_m=0.3)
  assert results['traj2img']['top@1'] == results['img2traj']['top@1'] == 100.0
  assert results['pairs_drawn'] >= 8 and 0 < results['possible_fraction'] <= 1


def test_a_trajectory_outside_the_box_is_impossible(tiny_batch):
  moved = dict(tiny_batch, trajectory=tiny_batch['trajectory'] + 100.0)
  scores, info = render_reference.score_matrix(moved['trajectory'], moved['image'], moved['box'])
  assert np.isneginf(scores).all() and info['pairs_drawn'] == 0
  results = render_reference.reference_metrics(moved, near_duplicate_m=0.3)
  assert results['traj2img']['top@1'] == 0.0  # Ties with every impossible pair count against.


def test_reference_mode_writes_results(tmp_path, synthetic_data_dir):
  config = test_config.get_config()
  config.data.data_dir = synthetic_data_dir
  main.run(config, 'reference', str(tmp_path))
  results = json.loads((tmp_path / 'eval' / 'results.json').read_text())
  assert results['method'] == 'render_reference'
  assert results['traj2img']['top@1'] > 90 and results['img2traj']['top@1'] > 90
  assert not (tmp_path / 'checkpoints').exists()
