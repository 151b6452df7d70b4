"""Search: embed a gallery into shards, index it (exact, FAISS), query it; and every bad input."""

import json
import pathlib
import shutil
import subprocess
import sys
import time

import faiss
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from configs import test as test_config
from trajcross_jax.retriever import Retriever
from trajcross_jax.search import gallery, modes, query
from trajcross_jax.search import index as index_lib

REPO = pathlib.Path(__file__).resolve().parents[1]


def search_config(data_dir, embed_dir, **fields):
  config = test_config.get_config()
  config.data.data_dir = data_dir
  config.embed.dir = str(embed_dir)
  config.embed.shard_size = 16  # The 48 test pairs in 3 shards.
  config.embed.batch_size = 8
  config.search.k = 5
  for dotted, value in fields.items():
    section, key = dotted.split('__')
    config[section][key] = value
  return config


@pytest.fixture(scope='module')
def embedded(tmp_path_factory, trained_workdir, synthetic_data_dir):
  """The tiny test split embedded (both modalities) by the trained test model."""
  out = tmp_path_factory.mktemp('gallery') / 'test'
  config = search_config(synthetic_data_dir, out)
  modes.embed(config, trained_workdir)
  return config, out


def main_command(workdir, data_dir, embed_dir, *args: str) -> list[str]:
  """The entry point on configs/test.py with the test model, its data and an embedding dir."""
  return [
    sys.executable,
    '-m',
    'trajcross_jax.main',
    '--config=configs/test.py',
    f'--workdir={workdir}',
    f'--config.data.data_dir={data_dir}',
    f'--config.embed.dir={embed_dir}',
    *args,
  ]


def shard_bytes(directory: pathlib.Path) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_embed_writes_numbered_shards_metadata_and_a_manifest(embedded, trained_workdir):
  _, out = embedded
  manifest = json.loads((out / 'manifest.json').read_text())
  retriever = Retriever.load(trained_workdir)
  assert manifest['num_items'] == 48 and manifest['num_shards'] == 3
  assert manifest['checkpoint']['params_hash'] == retriever.params_hash
  assert manifest['checkpoint']['step'] == retriever.step
  names = sorted(p.name for p in out.iterdir() if p.is_file())
  assert names == sorted(
    ['manifest.json']
    + [
      f'{kind}-{i:05d}.{ext}'
      for i in range(3)
      for kind, ext in (('trajectory', 'npy'), ('image', 'npy'), ('meta', 'jsonl'))
    ]
  )
  first = np.load(out / 'image-00000.npy')
  assert first.shape == (16, manifest['dim']) and first.dtype == np.float32
  lines = (out / 'meta-00002.jsonl').read_text().splitlines()
  assert [json.loads(x)['id'] for x in lines] == list(range(32, 48))
  assert set(json.loads(lines[0])) == {'id', 'source', 'ped_id', 'track_id', 'start_frame', 'box'}


@pytest.mark.parametrize(
  ('score_bytes', 'one_step'),
  # The last: a budget of 16 queries' scores a block, so 48 queries (64 padded) take 4 calls.
  [(index_lib.SCORE_BYTES, True), (4 * 7 * 64, False), (4 * 7 * 16, False)],
)
def test_exact_search_equals_a_numpy_ranking(embedded, monkeypatch, score_bytes, one_step):
  _, out = embedded
  images, _ = gallery.load_embeddings(out, 'image')
  trajectories, _ = gallery.load_embeddings(out, 'trajectory')
  # Several blocks, a ragged last one; scored all in one step, or (a score budget of one block
  # for 64 padded queries) one block a step.
  monkeypatch.setattr(index_lib, 'SCORE_BYTES', score_bytes)
  exact = index_lib.ExactIndex.from_array(images, block=7)
  blocks = exact.gallery.shape[0]
  assert index_lib.blocks_per_step(blocks, 7, 64) == (blocks if one_step else 1)
  scores, ids = exact.search(trajectories, 5)
  full = trajectories @ images.T
  np.testing.assert_array_equal(ids, np.argsort(-full, axis=1, kind='stable')[:, :5])
  np.testing.assert_allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :5], rtol=1e-5)


def test_the_chunked_top_k_is_the_top_k():
  rng = np.random.default_rng(5)
  scores = rng.normal(size=(40, 512)).astype(np.float32)
  scores[:, 500:] = -np.inf  # Padding, as the exact search masks it.
  scores[3] = -np.sort(-scores[3])  # The best all in one chunk.
  for k in (1, 5, 16):
    values, ids = index_lib.chunked_top_k(jnp.asarray(scores), k, chunk=8)
    expected = np.argsort(-scores, axis=1, kind='stable')[:, :k]
    np.testing.assert_array_equal(np.asarray(ids), expected)
    np.testing.assert_array_equal(np.asarray(values), np.take_along_axis(scores, expected, 1))


def test_blocks_per_step_divides_the_blocks_within_the_score_budget():
  budget = index_lib.SCORE_BYTES
  assert index_lib.blocks_per_step(16, 65_536, 1) == 16  # 1M scores for one query: one step.
  assert index_lib.blocks_per_step(160, 65_536, 1) == 160
  assert index_lib.blocks_per_step(16, 65_536, 1024) == 1  # A block is over the budget alone.
  for blocks, queries in ((12, 8), (15, 16), (7, 2)):
    g = index_lib.blocks_per_step(blocks, 4096, queries)
    assert blocks % g == 0 and (g == 1 or 4 * 4096 * queries * g <= budget)


def test_float16_storage_keeps_the_ranking_close():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(500, 32)).astype(np.float32)
  q = rng.normal(size=(20, 32)).astype(np.float32)
  exact = index_lib.ExactIndex.from_array(x).search(q, 10)[1]
  half = index_lib.ExactIndex.from_array(x.astype(np.float16)).search(q, 10)[1]
  assert index_lib.recall_at_k(half, exact) >= 0.95


def test_an_approximate_index_on_a_clustered_gallery_reaches_its_recall(tmp_path):
  rng = np.random.default_rng(1)
  centres = rng.normal(size=(40, 32))
  x = centres[rng.integers(0, 40, 20_000)] + 0.3 * rng.normal(size=(20_000, 32))
  x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
  queries = x[rng.choice(20_000, 200, replace=False)] + 0.01
  # Float32 or float16 vectors do not fit 64 bytes a vector; one byte a dimension does.
  factory = index_lib.choose_factory(len(x), 32, max_bytes=64 * 20_000)
  assert factory == 'IVF512,SQ8'
  factory = index_lib.choose_factory(len(x), 32, max_bytes=24 * 20_000)
  assert factory.startswith('OPQ') and ',PQ' in factory  # Nor 8-bit codes 24 bytes a vector.
  for factory in ('IVF256,Flat', 'HNSW32', 'IVF256,SQ8'):
    index, info = index_lib.build_faiss(x, queries, factory, target_recall=0.95)
    assert info['recall_at_10'] >= 0.95, (factory, info)
    assert info['search_parameter'] in ('nprobe', 'efSearch')
    size = len(faiss.serialize_index(index))
    assert size <= 1.05 * index_lib.estimate_bytes(factory, len(x), 32), (factory, size)


def test_the_chosen_index_grows_with_the_gallery_within_its_budget_and_list_cap():
  budget = 4 * 2**30
  assert index_lib.choose_factory(1_000_000, 256, budget) == 'HNSW32'
  # 10M full vectors (10 GB) or float16 ones (5 GB) do not fit: 8-bit codes, and k-means'
  # lists capped, not 16,384.
  assert index_lib.choose_factory(10_000_000, 256, budget) == 'IVF4096,SQ8'
  assert index_lib.choose_factory(100_000, 256, 2**30) == 'HNSW32'
  assert index_lib.choose_factory(100_000, 256, 120 * 2**20) == 'IVF1024,Flat'
  assert index_lib.estimate_bytes('IVF4096,SQ8', 10_000_000, 256) < budget
  assert index_lib.choose_factory(100_000_000, 256, budget) == 'OPQ32,IVF4096,PQ32'


def test_lossy_codes_re_scored_with_the_stored_vectors_reach_what_their_lists_allow():
  rng = np.random.default_rng(3)
  centres = rng.normal(size=(40, 32))
  x = centres[rng.integers(0, 40, 20_000)] + 0.3 * rng.normal(size=(20_000, 32))
  x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
  queries = x[rng.choice(20_000, 200, replace=False)].astype(np.float32) + 0.01
  raw, raw_info = index_lib.build_faiss(x, queries, 'IVF256,PQ8', 0.95)
  # Product codes alone stop short of the target at any nprobe: the tuning stops at the plateau
  # (IVF256 has 256 lists: nprobe 512 and 1,024 scan no more), not at the largest value.
  assert not raw_info['target_met'] and raw_info['recall_at_10'] < 0.8
  assert raw_info['search_value'] <= 256
  faiss.ParameterSpace().set_index_parameter(raw, 'nprobe', 1024)
  truth = index_lib.ExactIndex.from_array(x).search(queries, 10)[1]
  best = index_lib.recall_at_k(raw.search(queries, 10)[1], truth)
  assert raw_info['recall_at_10'] >= best - index_lib.PLATEAU
  # 8 bytes for 32 dimensions are coarse: 20 candidates a result (10 reached 0.90 here).
  refined, info = index_lib.build_faiss(x, queries, 'IVF256,PQ8', 0.95, refine=20)
  assert isinstance(refined, index_lib.Refined) and info['refine'] == 20
  assert info['target_met'] and info['recall_at_10'] >= 0.95
  scores, ids = refined.search(queries, 10)
  np.testing.assert_allclose(
    scores, np.einsum('qd,qkd->qk', queries, x[ids].astype(np.float32)), rtol=1e-5
  )
  assert (np.diff(scores, axis=1) <= 0).all()


@pytest.mark.parametrize('factory', ['IVF16,PQ4x4', 'PCA8,IVF16,PQ4x4'])
def test_product_codes_skip_polysemous_training_and_search_the_same(factory):
  rng = np.random.default_rng(5)
  x = rng.normal(size=(2_000, 16)).astype(np.float32)
  queries = rng.normal(size=(30, 16)).astype(np.float32)
  built, info = index_lib.build_faiss(x, queries, factory, 0.5)
  assert not faiss.downcast_index(faiss.extract_index_ivf(built)).do_polysemous_training
  # FAISS's default: the same training points (all 2,000, in order), the same seeded k-means,
  # and the codes renumbered for Hamming distances, which leave the searched distances as they are.
  default = faiss.index_factory(16, factory, faiss.METRIC_INNER_PRODUCT)
  assert faiss.downcast_index(faiss.extract_index_ivf(default)).do_polysemous_training
  default.train(x)
  default.add(x)
  faiss.ParameterSpace().set_index_parameter(default, 'nprobe', info['search_value'])
  scores, ids = built.search(queries, 10)
  default_scores, default_ids = default.search(queries, 10)
  np.testing.assert_array_equal(ids, default_ids)
  np.testing.assert_allclose(scores, default_scores, rtol=1e-6)


@pytest.mark.parametrize('factory', ['Flat', 'HNSW8'])
def test_a_flat_store_reserved_up_front_is_not_moved_by_adding(factory):
  x = np.random.default_rng(4).normal(size=(3_000, 16)).astype(np.float32)

  def addresses(reserve: bool) -> list[int]:
    index = faiss.index_factory(16, factory, faiss.METRIC_INNER_PRODUCT)
    if reserve:
      index_lib.reserve_flat(index, len(x))
    flat = faiss.downcast_index(index.storage) if factory.startswith('HNSW') else index
    seen = []
    for rows in np.split(x, 3):
      index.add(rows)
      seen.append(int(flat.codes.data()))
    assert index.ntotal == len(x) and flat.codes.size() == x.nbytes
    return seen

  assert len(set(addresses(reserve=False))) > 1  # Grown by add(), the store moves.
  assert len(set(addresses(reserve=True))) == 1


def test_a_float16_gallery_added_in_slices_builds_the_same_index(monkeypatch):
  rng = np.random.default_rng(2)
  x = rng.normal(size=(3_000, 16)).astype(np.float16)
  queries = rng.normal(size=(50, 16)).astype(np.float32)
  whole, info = index_lib.build_faiss(x.astype(np.float32), queries, 'IVF64,Flat', 0.95)
  monkeypatch.setattr(index_lib, 'ADD_ROWS', 700)  # Five add() calls, the last one short.
  sliced, sliced_info = index_lib.build_faiss(x, queries, 'IVF64,Flat', 0.95)
  assert sliced.ntotal == len(x)
  assert sliced_info['recall_at_10'] == info['recall_at_10'] >= 0.95
  np.testing.assert_array_equal(sliced.search(queries, 10)[1], whole.search(queries, 10)[1])
  # A caller's truth is used as given: the recall of the same index against other ids is 0.
  _, info = index_lib.build_faiss(x, queries, 'IVF64,Flat', 0.95, truth=np.full((50, 10), -1))
  assert info['recall_at_10'] == 0.0


def test_index_and_search_modes_end_to_end(embedded, trained_workdir, tmp_path):
  config, out = embedded
  for kind in ('exact', 'faiss'):
    config.index.kind = kind
    config.index.num_queries = 48
    config.index.factory = 'HNSW32' if kind == 'faiss' else ''
    record = modes.index(config, trained_workdir)
    assert record['kind'] == kind and record['num_items'] == 48
    assert record['recall_at_10'] >= (1.0 if kind == 'exact' else 0.9)
    assert json.loads((out / f'index-image-{kind}' / 'index.json').read_text())['bytes'] > 0
  # Lossy codes, re-scored from the shards: with 10 x 5 candidates of 48, every item is
  # re-scored, so the top 5 scores are the exact ones.
  config.index.factory = 'IVF4,SQ4'
  record = modes.index(config, trained_workdir)
  assert record['refine'] == config.index.refine == 10 and record['recall_at_10'] == 1.0
  refined = index_lib.Index.load(out / 'index-image-faiss')
  assert isinstance(refined.engine, index_lib.Refined)
  assert isinstance(refined.engine.vectors, gallery.MappedEmbeddings)
  trajectories, images = (gallery.load_embeddings(out, m)[0] for m in ('trajectory', 'image'))
  scores, ids = refined.search(trajectories, 5)
  np.testing.assert_allclose(scores, np.take_along_axis(trajectories @ images.T, ids, 1), 1e-5)
  np.testing.assert_allclose(scores, -np.sort(-(trajectories @ images.T), 1)[:, :5], 1e-5)
  config.index.refine = 0
  assert modes.index(config, trained_workdir)['refine'] == 0
  assert not isinstance(index_lib.Index.load(out / 'index-image-faiss').engine, index_lib.Refined)
  config.index.refine = 10
  # Each test trajectory searches the images: the model's own ranking of the stored embeddings.
  config.index.kind = 'exact'
  config.search.split = 'test'
  config.search.ids = tuple(range(48))
  config.search.out = str(tmp_path / 'search')
  results = modes.search(config, trained_workdir)
  scores = (
    gallery.load_embeddings(out, 'trajectory')[0] @ gallery.load_embeddings(out, 'image')[0].T
  )
  expected = np.argsort(-scores, axis=1, kind='stable')[:, :5]
  assert [[h['id'] for h in r['results']] for r in results] == expected.tolist()
  assert all(len(r['results']) == 5 for r in results)
  assert [h['rank'] for h in results[0]['results']] == [1, 2, 3, 4, 5]
  scores = [h['score'] for h in results[0]['results']]
  assert scores == sorted(scores, reverse=True)
  csv_lines = (tmp_path / 'search' / 'results.csv').read_text().splitlines()
  assert csv_lines[0] == 'query,rank,id,score,source,ped_id,track_id,start_frame'
  assert len(csv_lines) == 1 + 48 * 5
  png = tmp_path / 'search' / 'results.png'
  assert png.exists() and Image.open(png).size[0] > 500


def test_queries_from_files(embedded, trained_workdir, tmp_path, synthetic_data_dir):
  config, out = embedded
  source = query.dataset_source(gallery.read_manifest(out))
  items = source.__getitems__([3, 7])
  # Trajectories as JSON: the first result of test item 3's trajectory is scored like a split
  # query of item 3.
  (tmp_path / 'q.json').write_text(json.dumps([items[0]['trajectory'].tolist()]))
  config.index.kind = 'exact'
  modes.index(config, trained_workdir)
  config.search.queries = str(tmp_path / 'q.json')
  config.search.out = str(tmp_path / 'from_json')
  from_file = modes.search(config, trained_workdir)
  config.search.queries = ''
  config.search.split = 'test'
  config.search.ids = (3,)
  config.search.out = str(tmp_path / 'from_split')
  from_split = modes.search(config, trained_workdir)
  assert [h['id'] for h in from_file[0]['results']] == [h['id'] for h in from_split[0]['results']]
  # Images as PNG files with a box CSV, against the trajectory index.
  Image.fromarray(items[1]['image'][..., 0]).save(tmp_path / 'seven.png')
  box = ','.join(str(float(v)) for v in items[1]['box'])
  (tmp_path / 'images.csv').write_text(f'file,x_left,y_top,x_right,y_bottom\nseven.png,{box}\n')
  config.index.modality = 'trajectory'
  modes.index(config, trained_workdir)
  config.search.queries = str(tmp_path / 'images.csv')
  config.search.out = str(tmp_path / 'from_png')
  results = modes.search(config, trained_workdir)
  assert results[0]['query'] == 'seven.png' and len(results[0]['results']) == 5
  config.index.modality = 'image'


def test_a_killed_embed_resumes_to_the_same_bytes(embedded, trained_workdir, synthetic_data_dir):
  config, out = embedded
  reference = shard_bytes(out)
  resumed_dir = out.parent / 'resumed'
  shutil.copytree(out, resumed_dir)
  # What a kill leaves: the last shard's files missing, a half-written partial file.
  for name in ('trajectory-00002.npy', 'image-00002.npy', 'meta-00002.jsonl'):
    (resumed_dir / name).unlink()
  (resumed_dir / '.image-00002.npy.partial').write_bytes(b'\x00' * 100)
  (resumed_dir / 'meta-00001.jsonl').unlink()  # Shard 1 lost only one of its files.
  config = search_config(synthetic_data_dir, resumed_dir)
  written = gallery.embed(
    Retriever.load(trained_workdir, batch_size=8),
    modes._gallery_source(modes.pipeline.prepare(config.data), config),
    resumed_dir,
    json.loads((out / 'manifest.json').read_text()),
    progress=False,
  )
  assert written == [1, 2]
  assert shard_bytes(resumed_dir) == reference


def test_a_real_kill_then_restart_matches(tmp_path, trained_workdir, synthetic_data_dir, embedded):
  _, reference_dir = embedded
  out = tmp_path / 'killed'
  command = main_command(
    trained_workdir,
    synthetic_data_dir,
    out,
    '--config.embed.shard_size=16',
    '--config.embed.batch_size=8',
    '--mode=embed',
  )
  process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
  deadline = time.time() + 120
  while not (out / 'image-00000.npy').exists() and time.time() < deadline:
    time.sleep(0.01)
  process.kill()
  process.wait()
  subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=300)
  assert shard_bytes(out) == shard_bytes(reference_dir)


def test_the_console_command_lists_every_mode():
  run = subprocess.run(
    [shutil.which('trajcross') or 'trajcross', '--helpfull'],
    capture_output=True,
    text=True,
    timeout=120,
  )
  for mode in ('train_and_eval', 'eval', 'prepare', 'preview', 'embed', 'index', 'search'):
    assert mode in run.stdout


# ----------------------------------------------------------------------------- bad input


def test_a_missing_or_truncated_shard_is_named(embedded, tmp_path):
  _, out = embedded
  broken = tmp_path / 'broken'
  shutil.copytree(out, broken)
  (broken / 'image-00001.npy').unlink()
  with pytest.raises(gallery.GalleryError, match='image-00001.npy: missing'):
    gallery.load_embeddings(broken, 'image')
  shutil.copy(out / 'image-00001.npy', broken / 'image-00001.npy')
  data = (broken / 'image-00002.npy').read_bytes()
  (broken / 'image-00002.npy').write_bytes(data[: len(data) // 2])
  with pytest.raises(gallery.GalleryError, match='image-00002.npy: truncated'):
    gallery.load_embeddings(broken, 'image')
  with pytest.raises(gallery.GalleryError, match='image-00002.npy: truncated'):
    gallery.MappedEmbeddings(broken, 'image')  # What a refined index reads its rows from.
  with pytest.raises(gallery.GalleryError, match='is not an embedding directory'):
    gallery.load_embeddings(tmp_path, 'image')


def test_another_gallery_in_the_directory_is_never_overwritten(embedded, trained_workdir):
  _, out = embedded
  manifest = json.loads((out / 'manifest.json').read_text())
  other = dict(manifest, shard_size=8, num_shards=6)
  before = shard_bytes(out)
  with pytest.raises(gallery.GalleryError, match='differs in num_shards, shard_size'):
    gallery.embed(Retriever.load(trained_workdir), None, out, other, progress=False)
  assert shard_bytes(out) == before


def test_an_index_of_another_checkpoint_is_refused(embedded, trained_workdir, tmp_path):
  config, out = embedded
  config.index.kind = 'exact'
  modes.index(config, trained_workdir)
  index = index_lib.Index.load(out / 'index-image-exact')
  retriever = Retriever.load(trained_workdir)
  retriever.params_hash = '0123456789abcdef'  # As another checkpoint would be.
  with pytest.raises(index_lib.SearchIndexError, match='built from another checkpoint'):
    query.Searcher(retriever, index)


def test_k_larger_than_the_gallery_is_refused(embedded, trained_workdir):
  config, out = embedded
  config.index.kind = 'exact'
  modes.index(config, trained_workdir)
  index = index_lib.Index.load(out / 'index-image-exact')
  with pytest.raises(index_lib.SearchIndexError, match=r'k=49 must be in \[1, 48\]'):
    index.search(np.zeros((1, index.record['dim']), np.float32), 49)


@pytest.mark.parametrize(
  'name, text, message',
  [
    ('q.json', '[[1, 2], ', r'q.json:1: not JSON'),
    ('q.json', '[[[1, 2], [3, 4]]]', r'trajectory 0 has shape \(2, 2\), expected \(20, 2\)'),
    ('q.json', json.dumps([[[1.0, 2.0]] * 19 + [['x', 1]]]), 'not a list of'),
    (
      'q.json',
      '[' + json.dumps([[1.0, 2.0]] * 19 + [[1.0, 2.0]]).replace('2.0]]', 'NaN]]') + ']',
      'NaN or infinity',
    ),
    ('q.txt', '0 1 1.0 2.0\n', r'pedestrian 1 has 1 points; a query needs exactly 20'),
    ('q.txt', '0 1 1.0 zz\n', r"q.txt:1: y 'zz' is not a number"),
  ],
)
def test_bad_trajectory_query_files_are_named(tmp_path, name, text, message):
  path = tmp_path / name
  path.write_text(text)
  with pytest.raises(query.QueryFileError, match=message):
    query.read_trajectory_queries(path, 20)


@pytest.mark.parametrize(
  'row, image, message',
  [
    ('a.png,0,1,1,0', np.zeros((32, 32), np.uint8), r'got \(32, 32\) mode L'),
    ('a.png,0,1,1,0', np.zeros((64, 64, 3), np.uint8), 'mode RGB'),
    ('a.png,1,1,1,0', np.zeros((64, 64), np.uint8), 'x_left 1.0 must be < x_right'),
    ('a.png,0,0,1,0', np.zeros((64, 64), np.uint8), 'y_top 0.0 must be > y_bottom'),
    ('a.png,0,nan,1,0', np.zeros((64, 64), np.uint8), 'the box has a NaN'),
    ('a.png,0,1,1', np.zeros((64, 64), np.uint8), 'expected 5 fields'),
    ('b.png,0,1,1,0', np.zeros((64, 64), np.uint8), 'no such image'),
  ],
)
def test_bad_image_queries_are_named(tmp_path, row, image, message):
  Image.fromarray(image).save(tmp_path / 'a.png')
  (tmp_path / 'q.csv').write_text(f'file,x_left,y_top,x_right,y_bottom\n{row}\n')
  with pytest.raises(query.QueryFileError, match=message):
    query.read_image_queries(tmp_path / 'q.csv')


def test_a_bad_query_file_is_one_line_on_the_command_line(
  embedded, trained_workdir, synthetic_data_dir, tmp_path
):
  _, out = embedded
  bad = tmp_path / 'bad.json'
  bad.write_text('{"not": "a list"}')
  run = subprocess.run(
    main_command(
      trained_workdir, synthetic_data_dir, out, f'--config.search.queries={bad}', '--mode=search'
    ),
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert run.returncode != 0
  assert f'error: {bad}: expected a non-empty JSON list of trajectories' in run.stderr
  assert 'Traceback' not in run.stderr
