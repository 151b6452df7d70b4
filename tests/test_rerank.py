"""The second stage: the cross-encoder re-ranker, its training and its two-stage metrics."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from trajcross_jax import evaluate
from trajcross_jax.data import render
from trajcross_jax.rerank import model as model_lib
from trajcross_jax.rerank import reranker as reranker_lib
from trajcross_jax.rerank import train as rerank_train
from trajcross_jax.rerank.reranker import (
  Reranker,
  RerankerError,
  check_trained_on,
  two_stage_ranks,
)
from trajcross_jax.search import gallery, modes, query

REPO = Path(__file__).resolve().parents[1]


def _config(data_dir):
  config = test_config.get_config()
  config.data.data_dir = data_dir
  config.rerank.enabled = True
  return config


@pytest.fixture(scope='module')
def reranked_workdir(tmp_path_factory, trained_workdir, synthetic_data_dir):
  """A copy of the trained test workdir with a re-ranker trained over its bi-encoder."""
  workdir = tmp_path_factory.mktemp('reranked') / 'w'
  shutil.copytree(trained_workdir, workdir)
  rerank_train.train(_config(synthetic_data_dir), str(workdir))
  return str(workdir)


def test_two_stage_ranks():
  candidates = np.array([[4, 7, 1], [2, 0, 3], [5, 6, 8], [9, 1, 2]])
  scores = np.array([[0.1, 0.9, 0.5], [0.2, 0.2, 0.1], [0.0, 0.0, 0.0], [np.nan, 1.0, 0.0]])
  own = np.array([1, 0, 3, 9])
  bi = np.array([3, 2, 7, 1])
  # Query 0: own item 1 scored 0.5, beaten by 0.9 -> 2. Query 1: own item 0 tied with item 2
  # (a tie counts against it) -> 2. Query 2: own item not among the candidates: keeps rank 7.
  # Query 3: own item 9 scored NaN: every other candidate ranks above it -> 3.
  np.testing.assert_array_equal(two_stage_ranks(bi, candidates, scores, own), [2, 2, 7, 3])


def test_hard_candidates_are_the_best_others():
  rng = np.random.default_rng(0)
  q, g = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
  got = rerank_train.hard_candidates(q.astype(np.float32), g.astype(np.float32), 6, chunk=16)
  s = q @ g.T
  np.fill_diagonal(s, -np.inf)
  np.testing.assert_array_equal(got, np.argsort(-s, axis=1)[:, :6])
  assert not (got == np.arange(50)[:, None]).any()


def test_groups_put_the_partner_first(tiny_batch):
  rng = np.random.default_rng(0)
  pools = np.array([[j for j in range(8) if j != i][:5] for i in range(8)])
  queries = np.array([0, 3, 5, 6])
  ids = rerank_train.sample_groups(rng, queries, pools, 4)
  np.testing.assert_array_equal(ids[:, 0], queries)
  for row, q in zip(ids, queries, strict=True):
    assert len(set(row)) == 4 and set(row[1:]) <= set(pools[q])
  is_image = np.array([False, True, False, True])
  batch = rerank_train.group_batch(tiny_batch, queries, ids, is_image)
  assert batch['trajectory'].shape == (4, 4, 20, 2) and batch['image'].shape == (4, 4, 64, 64, 1)
  # A trajectory query meets its group's images; an image query its group's trajectories.
  np.testing.assert_array_equal(batch['image'][0], tiny_batch['image'][ids[0]])
  np.testing.assert_allclose(batch['trajectory'][0], tiny_batch['trajectory'][[0] * 4])
  np.testing.assert_allclose(batch['trajectory'][1], tiny_batch['trajectory'][ids[1]])
  np.testing.assert_array_equal(batch['image'][1], tiny_batch['image'][[3] * 4])
  np.testing.assert_allclose(batch['box'][1], tiny_batch['box'][[3] * 4])


def test_the_pair_input_draws_the_trajectory_over_its_own_image(tiny_batch):
  t, image, box = tiny_batch['trajectory'], tiny_batch['image'], tiny_batch['box']
  # The widths the fixture's images were drawn with (conftest: draw_image_params(t, 0, 1, i, 0)).
  widths = [render.draw_image_params(t[i], 0, 1, i, 0)[1] for i in range(len(t))]
  for i, w in enumerate(widths):
    x = np.asarray(model_lib.pair_input(t[i : i + 1], image[i : i + 1], box[i : i + 1], w))[0]
    assert x.shape == (64, 64, 2)
    np.testing.assert_allclose(x[..., 1], image[i, ..., 0] / 255.0, atol=1e-6)
    # Drawn at the image's own width in its own box, the trajectory is the image (up to the
    # float32 box and rounding).
    assert np.abs(x[..., 0] - x[..., 1]).max() < 0.05
  # In another pair's box it misses that pair's image.
  x = np.asarray(model_lib.pair_input(t[:1].repeat(7, 0), image[1:], box[1:], 2.0))
  assert (np.abs(x[..., 0] - x[..., 1]).max(axis=(1, 2)) > 0.5).all()


def test_the_endpoint_channels_mark_the_first_and_last_points(tiny_batch):
  t, image, box = tiny_batch['trajectory'][:4], tiny_batch['image'][:4], tiny_batch['box'][:4]
  x = np.asarray(model_lib.pair_input(t, image, box, 2.0, endpoint_width=3.0))
  assert x.shape == (4, 64, 64, 4)
  np.testing.assert_allclose(x[..., :2], np.asarray(model_lib.pair_input(t, image, box, 2.0)))
  side = box[:, 2] - box[:, 0]
  for channel, point in ((2, t[:, 0]), (3, t[:, -1])):
    # Pixel (row, column) of each point in its own box, north up.
    col = np.floor((point[:, 0] - box[:, 0]) / side * 64).astype(int)
    row = np.floor((box[:, 1] - point[:, 1]) / side * 64).astype(int)
    for i in range(4):
      ink = x[i, ..., channel]
      assert ink[row[i], col[i]] == 1.0
      # A dot: all ink within two pixels of the point, none along the rest of the line.
      rows, cols = np.nonzero(ink)
      assert np.abs(rows - row[i]).max() <= 2 and np.abs(cols - col[i]).max() <= 2
  # The two ends of a moving trajectory are different dots.
  assert (np.abs(x[..., 2] - x[..., 3]).max(axis=(1, 2)) == 1.0).all()
  model = model_lib.CrossEncoder(channels=(4,), hidden=4, endpoint_width=3.0)
  params = model.init(jax.random.key(0), t, image, box)
  assert params['params']['conv0']['kernel'].shape == (3, 3, 4, 4)


def test_features_are_read_bilinearly_at_full_resolution_pixels():
  rng = np.random.default_rng(0)
  features = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
  # At stride 4, cell (row i, column j) is centred on pixel ((j + 0.5) 4, (i + 0.5) 4).
  coords = np.array(
    [
      [[10.0, 22.0], [12.0, 22.0], [10.0, 24.0], [-9.0, 3.0]],
      [[2.0, 2.0], [31.0, 31.0], [0.0, 2.0], [40.0, 10.0]],
    ],
    np.float32,
  )
  got = np.asarray(model_lib.sample_features(features, coords, 4))
  np.testing.assert_allclose(got[0, 0], features[0, 5, 2], rtol=1e-6)
  np.testing.assert_allclose(got[0, 1], (features[0, 5, 2] + features[0, 5, 3]) / 2, rtol=1e-5)
  np.testing.assert_allclose(got[0, 2], (features[0, 5, 2] + features[0, 6, 2]) / 2, rtol=1e-5)
  np.testing.assert_allclose(got[1, 0], features[1, 0, 0], rtol=1e-6)
  # Half a cell past the last centre, the outer neighbour counts as zero.
  np.testing.assert_allclose(got[1, 1], features[1, 7, 7] * 0.75**2, rtol=1e-5)
  np.testing.assert_allclose(got[1, 2], features[1, 0, 0] * 0.5, rtol=1e-5)
  np.testing.assert_array_equal(got[0, 3], 0)  # Off the map.
  np.testing.assert_array_equal(got[1, 3], 0)


def test_the_points_read_are_the_trajectory_continued_at_both_ends(tiny_batch):
  line = np.stack([np.arange(6.0), 0.5 * np.arange(6.0)], axis=-1)[None].astype(np.float32)
  got = np.asarray(model_lib.extended_track(line, 3))
  want = np.stack([np.arange(-3.0, 9.0), 0.5 * np.arange(-3.0, 9.0)], axis=-1)
  np.testing.assert_allclose(got[0], want, atol=1e-6)
  # Pixel coordinates: the convention of the endpoint channels' dots (north up).
  t, box = tiny_batch['trajectory'][:4], tiny_batch['box'][:4]
  side = box[:, 2] - box[:, 0]
  coords = np.asarray(model_lib.pixel_coords(t, box, 64))
  np.testing.assert_allclose(coords[..., 0], (t[..., 0] - box[:, :1]) / side[:, None] * 64, 1e-4)
  np.testing.assert_allclose(coords[..., 1], (box[:, 1:2] - t[..., 1]) / side[:, None] * 64, 1e-4)


def test_point_features_read_the_image_where_the_trajectory_runs(tiny_batch):
  t, image, box = (tiny_batch[k][:2] for k in ('trajectory', 'image', 'box'))
  model = model_lib.CrossEncoder(channels=(4, 8, 8), hidden=8, point_features=5)
  params = model.init(jax.random.key(0), t, image, box)
  m = t.shape[1] + 2 * model_lib.EXTRA_POINTS
  assert params['params']['points']['kernel'].shape == (4 + 8, 5)
  kernel = params['params']['hidden']['kernel']
  assert kernel.shape == (2 * 8 + m * 5, 8)
  # Only the features read at the trajectory's first point (after the continued ones) kept.
  first = 2 * 8 + model_lib.EXTRA_POINTS * 5
  params['params']['hidden']['kernel'] = (
    jnp.zeros_like(kernel).at[first : first + 5].set(kernel[first : first + 5])
  )
  base = np.asarray(model.apply(params, t, image, box))
  assert np.isfinite(base).all()
  at = np.asarray(model_lib.pixel_coords(t[:, :1], box, 64))[:, 0]  # (column, row) pixels.
  rows, cols = np.mgrid[:64, :64]
  for radius, changes in ((16, True), (None, False)):
    near = np.hypot(cols - at[0, 0], rows - at[0, 1]) < (radius or 16)
    # Ink wiped near the first point of pair 0, or everywhere else in its image.
    wiped = image.copy()
    wiped[0, ..., 0][near if radius else ~near] = 0
    got = np.asarray(model.apply(params, t, wiped, box))
    assert (got[0] != base[0]) == changes, radius
    assert got[1] == base[1]


def test_track_scores_are_a_mixture_density_over_both_directions():
  rng = np.random.default_rng(0)
  m, scale = 6, 0.3
  tracks = rng.normal(size=(1, 2, m, 2)) * 3
  whiten = np.eye(m) / scale
  observed = tracks[:, 0] + rng.normal(size=(1, m, 2)) * scale
  got = float(model_lib.track_scores(observed, tracks, whiten)[0])
  # An equal mixture of isotropic Gaussians (sd `scale`) around each track, both directions.
  parts = [
    -0.5 * np.sum((o - t) ** 2) / scale**2 - 2 * m * np.log(scale) - m * np.log(2 * np.pi)
    for o in (observed[0], observed[0, ::-1])
    for t in tracks[0]
  ]
  assert got == pytest.approx(np.logaddexp.reduce(parts) - np.log(4), rel=1e-4)
  # Read backwards, a trajectory scores the same; shifted off its track, lower.
  reverse = float(model_lib.track_scores(observed[:, ::-1], tracks, whiten)[0])
  assert reverse == pytest.approx(got, rel=1e-5)
  assert float(model_lib.track_scores(observed + 0.5, tracks, whiten)[0]) < got - 10


def test_a_track_reranker_trains_and_reloads(
  trained_workdir, synthetic_data_dir, tmp_path, tiny_batch
):
  workdir = tmp_path / 'w'
  shutil.copytree(trained_workdir, workdir)
  config = _config(synthetic_data_dir)
  config.rerank.update(scorer='track', channels=(4, 8), hidden=8, hypotheses=2, nll_weight=1.0)
  reranker = rerank_train.train(config, str(workdir))
  assert isinstance(reranker.model, model_lib.TrackMatcher)
  m = reranker.record['window_length']
  assert reranker.params['params']['track']['kernel'].shape[-1] == 2 * m * 2  # H x M x 2.
  from trajcross_jax.retriever import Retriever

  loaded = Reranker.load(workdir, Retriever.load(str(workdir)).params_hash)
  assert isinstance(loaded.model, model_lib.TrackMatcher)
  pairs = tiny_batch['trajectory'], tiny_batch['image'], tiny_batch['box']
  want = reranker.score(*pairs)
  np.testing.assert_allclose(loaded.score(*pairs), want, rtol=1e-5)
  assert np.isfinite(want).all()


def test_a_point_feature_reranker_trains_and_reloads(
  trained_workdir, synthetic_data_dir, tmp_path, tiny_batch
):
  workdir = tmp_path / 'w'
  shutil.copytree(trained_workdir, workdir)
  config = _config(synthetic_data_dir)
  config.rerank.update(channels=(4, 8), hidden=8, point_features=3)
  reranker = rerank_train.train(config, str(workdir))
  assert reranker.model.point_features == 3
  from trajcross_jax.retriever import Retriever

  loaded = Reranker.load(workdir, Retriever.load(str(workdir)).params_hash)
  assert loaded.model == reranker.model
  pairs = tiny_batch['trajectory'], tiny_batch['image'], tiny_batch['box']
  want = reranker.score(*pairs)
  np.testing.assert_allclose(loaded.score(*pairs), want, rtol=1e-5)
  assert np.isfinite(want).all() and np.ptp(want) > 0


def test_a_trained_reranker_reloads_to_the_same_scores(reranked_workdir, tiny_batch):
  from trajcross_jax.retriever import Retriever

  bi = Retriever.load(reranked_workdir)
  loaded = Reranker.load(reranked_workdir, bi.params_hash)
  record = json.loads((Path(reranked_workdir) / 'rerank' / 'rerank.json').read_text())
  assert record['bi_encoder'] == {'step': bi.step, 'params_hash': bi.params_hash}
  assert record['config']['candidates'] == 5 and loaded.candidates == 5
  s = loaded.score(tiny_batch['trajectory'], tiny_batch['image'], tiny_batch['box'])
  assert s.shape == (8,) and np.isfinite(s).all()
  # Scoring in groups equals scoring the pairs one by one.
  t2i = loaded.score_trajectory_queries(
    tiny_batch['trajectory'][:2],
    np.stack([tiny_batch['image']] * 2),
    np.stack([tiny_batch['box']] * 2),
  )
  np.testing.assert_allclose(
    t2i[0],
    loaded.score(
      np.repeat(tiny_batch['trajectory'][:1], 8, 0), tiny_batch['image'], tiny_batch['box']
    ),
    atol=1e-5,
  )
  i2t = loaded.score_image_queries(
    tiny_batch['image'][:1], tiny_batch['box'][:1], tiny_batch['trajectory'][None]
  )
  np.testing.assert_allclose(
    i2t[0],
    loaded.score(
      tiny_batch['trajectory'],
      np.repeat(tiny_batch['image'][:1], 8, 0),
      np.repeat(tiny_batch['box'][:1], 8, 0),
    ),
    atol=1e-5,
  )
  with pytest.raises(RerankerError, match='trained on the candidates of bi-encoder'):
    Reranker.load(reranked_workdir, 'another')
  # The same check for a re-ranker already in memory (a service's Gallery.load).
  check_trained_on(loaded.record, loaded.record['bi_encoder']['params_hash'], 'it')
  with pytest.raises(RerankerError, match="the re-ranker given for 'x' was trained on the cand"):
    check_trained_on(loaded.record, 'another', "the re-ranker given for 'x'")


def test_training_again_keeps_an_up_to_date_reranker(reranked_workdir, synthetic_data_dir):
  params = Path(reranked_workdir) / 'rerank' / 'rerank.json'
  before = params.stat().st_mtime_ns
  rerank_train.train(_config(synthetic_data_dir), reranked_workdir)
  assert params.stat().st_mtime_ns == before


def test_evaluation_reports_both_stages(reranked_workdir, synthetic_data_dir):
  results = evaluate.evaluate(_config(synthetic_data_dir), reranked_workdir)
  reranked = results['reranked']
  assert reranked['candidates'] == 5
  for direction in ('traj2img', 'img2traj'):
    bi, two = results[direction], reranked[direction]
    # Re-ordering the top 5 changes which of them comes first, never whether the pair is in it.
    assert two['top@5'] == pytest.approx(bi['top@5'])
    assert two['top@10'] == pytest.approx(bi['top@10'])
    assert 0 <= two['top@1'] <= two['top@5'] <= 100
    assert two['rerank_ms_per_query'] > 0
    assert {'top@1_near_dup', 'top@1_no_near_dup'} <= set(two)
  written = json.loads((Path(reranked_workdir) / 'eval' / 'results.json').read_text())
  assert written['reranked'] == json.loads(json.dumps(reranked))


def test_a_bi_weight_rewrites_the_record_and_orders_the_head_by_both(
  reranked_workdir, synthetic_data_dir, tmp_path
):
  workdir = tmp_path / 'w'
  shutil.copytree(reranked_workdir, workdir)
  before = Reranker.load(workdir)
  config = _config(synthetic_data_dir)
  config.rerank.bi_weight = 1e6  # The bi-encoder's order, the cross-encoder breaking ties.
  kept = rerank_train.train(config, str(workdir))
  assert kept.bi_weight == 1e6 and Reranker.load(workdir).bi_weight == 1e6
  for got, want in zip(jax.tree.leaves(kept.params), jax.tree.leaves(before.params), strict=True):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))  # Not trained again.
  np.testing.assert_allclose(kept.combined([1.0, 2.0], [0.5, 0.25]), [500001.0, 250002.0])
  results = evaluate.evaluate(config, str(workdir))
  for direction in ('traj2img', 'img2traj'):
    assert results['reranked'][direction]['top@1'] == pytest.approx(results[direction]['top@1'])
  config.rerank.update(bi_weight=0.0, candidates=5)  # Fewer candidates: not trained again.
  kept = rerank_train.train(config, str(workdir))
  assert Reranker.load(workdir).candidates == 5
  for got, want in zip(jax.tree.leaves(kept.params), jax.tree.leaves(before.params), strict=True):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  config.rerank.candidates = before.candidates
  rerank_train.train(config, str(workdir))
  assert Reranker.load(workdir).record == before.record
  # A record made before the later fields existed is the same re-ranker, not trained again.
  record_file = workdir / 'rerank' / 'rerank.json'
  old = json.loads(record_file.read_text())
  for field in reranker_lib.LATER_FIELDS:
    del old['config'][field]
  record_file.write_text(json.dumps(old))
  assert Reranker.load(workdir).bi_weight == 0.0
  kept = rerank_train.train(config, str(workdir))
  assert Reranker.load(workdir).record == before.record
  for got, want in zip(jax.tree.leaves(kept.params), jax.tree.leaves(before.params), strict=True):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  np.testing.assert_allclose(Reranker.load(workdir).combined([1.0], [9.0]), [1.0])


def test_evaluating_without_a_reranker_is_one_clear_line(
  tmp_path, trained_workdir, synthetic_data_dir
):
  workdir = tmp_path / 'w'
  shutil.copytree(trained_workdir, workdir)
  run = subprocess.run(
    [
      sys.executable,
      '-m',
      'trajcross_jax.main',
      '--config=configs/test.py',
      f'--workdir={workdir}',
      f'--config.data.data_dir={synthetic_data_dir}',
      '--config.rerank.enabled=True',
      '--mode=eval',
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert run.returncode != 0
  assert run.stderr.strip().splitlines()[-1].startswith('error: no re-ranker in ')
  assert 'Traceback' not in run.stderr


def test_search_reranks_the_head_of_the_index_results(
  reranked_workdir, synthetic_data_dir, tmp_path
):
  config = _config(synthetic_data_dir)
  config.embed.dir = str(tmp_path / 'gallery')
  config.embed.split = 'test'
  modes.embed(config, reranked_workdir)
  modes.index(config, reranked_workdir)
  config.search.split = 'test'
  config.search.ids = tuple(range(48))
  config.search.k = 8
  config.search.grid = False
  config.search.out = str(tmp_path / 'two')
  two = modes.search(config, reranked_workdir)
  config.rerank.enabled = False
  config.search.out = str(tmp_path / 'one')
  one = modes.search(config, reranked_workdir)
  reranker = Reranker.load(reranked_workdir)
  source = query.dataset_source(gallery.read_manifest(tmp_path / 'gallery'))
  for q, (first, second) in enumerate(zip(one, two, strict=True)):
    bi = [h['id'] for h in first['results']]
    hits = second['results']
    # The first 5 (rerank.candidates) are the index's first 5, ordered by the cross-encoder;
    # the rest keep the index's order.
    assert sorted(h['id'] for h in hits[:5]) == sorted(bi[:5])
    assert [h['id'] for h in hits[5:]] == bi[5:]
    cross = [h['rerank_score'] for h in hits[:5]]
    assert cross == sorted(cross, reverse=True)
    assert all(h['rerank_score'] is None for h in hits[5:])
    if q < 3:  # The cross-encoder's own score of the query and each hit's image.
      item, found = source[q], source.__getitems__([h['id'] for h in hits[:5]])
      expected = reranker.score(
        np.repeat(item['trajectory'][None], 5, 0),
        np.stack([f['image'] for f in found]),
        np.stack([f['box'] for f in found]),
      )
      np.testing.assert_allclose(cross, expected, rtol=1e-4, atol=1e-4)


def test_redrawn_pairs_are_fresh_draws_by_the_dataset_rules(tiny_batch):
  from trajcross_jax.data import hard

  track = tiny_batch['trajectory']
  crowd = np.full((len(track), hard.CROWD_SLOTS) + track.shape[1:], np.nan, np.float32)
  crowd[:, 0] = track + 0.4
  data = dict(tiny_batch, track=track, crowd=crowd)
  clean = rerank_train.redrawn(data, jax.random.key(0), hard.PAPER, chunk=3)
  np.testing.assert_array_equal(clean['trajectory'], track)  # The paper protocol keeps it,
  assert clean['image'].dtype == np.uint8 and clean['image'].shape == tiny_batch['image'].shape
  assert not np.array_equal(clean['image'], tiny_batch['image'])  # and draws new images.
  first = rerank_train.redrawn(data, jax.random.key(0), hard.HARD, chunk=3)
  again = rerank_train.redrawn(data, jax.random.key(1), hard.HARD, chunk=3)
  assert not np.allclose(first['trajectory'], track)  # A hard dataset observes anew,
  assert not np.allclose(first['trajectory'], again['trajectory'])  # each time differently.
  np.testing.assert_array_equal(first['track'], track)  # What it draws from stays.
  # Almost every pair clean (the paper rules from the true track), the rest hard.
  mixed = rerank_train.redrawn(data, jax.random.key(0), hard.HARD, 0.99, chunk=3)
  kept = (mixed['trajectory'] == track).all(axis=(1, 2))
  assert kept.sum() >= len(track) - 1


def test_a_reranker_trains_on_redrawn_pairs_and_replaces_the_one_there(
  reranked_workdir, synthetic_data_dir, tmp_path
):
  workdir = tmp_path / 'w'
  shutil.copytree(reranked_workdir, workdir)
  config = _config(synthetic_data_dir)
  config.rerank.redraw_images = True
  reranker = rerank_train.train(config, str(workdir))  # Another config: trained again.
  assert reranker.record['config']['redraw_images'] is True
  loaded = Reranker.load(workdir)
  assert loaded.record == reranker.record
  assert not (workdir / 'rerank' / 'rerank.json.tmp').exists()
  fresh = jax.tree.leaves(reranker.params)
  for got, want in zip(jax.tree.leaves(loaded.params), fresh, strict=True):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
