"""Tables built across machines: finished runs committed, and merged with local ones."""

import importlib
import json
import pathlib

import numpy as np

from benchmarks import report
from trajcross_jax import checkpoint


def _run(workdir, config, seed, top1, reaches_paper):
  """A finished run's files as trajcross_jax.main and benchmarks.reproduce write them."""
  (workdir / 'eval').mkdir(parents=True)
  metrics = {f'top@{k}': top1 + k for k in (1, 5, 10)}
  results = {'step': 10, 'num_test': 5, 'traj2img': metrics, 'img2traj': metrics}
  (workdir / 'eval' / 'results.json').write_text(json.dumps(results))
  info = {'config': config, 'seed': seed, 'wall_s': 60.0}
  (workdir / 'run_info.json').write_text(json.dumps(info))
  evals = [{'epoch': e, 'wall_s': 10.0 * e, 'split': 'test'} for e in (1, 2)]
  for r in evals:
    for d, row in zip(report.DIRECTIONS, report.PAPER_TABLE1['default'], strict=True):
      for k, p in zip(report.KS, row, strict=True):
        r[f'eval_{d}_{k}'] = p + (1 if reaches_paper and r['epoch'] == 2 else -1)
  (workdir / 'metrics.jsonl').write_text('\n'.join(json.dumps(r) for r in evals))
  return info


def test_committed_runs_complete_the_local_ones(tmp_path):
  local, committed = tmp_path / 'runs', tmp_path / 'committed'
  info = _run(tmp_path / 'elsewhere' / 'default' / 'seed1', 'default', 1, 50.0, True)
  out = report.commit_run(tmp_path / 'elsewhere' / 'default' / 'seed1', info, committed)
  assert sorted(p.name for p in out.iterdir()) == ['results.json', 'run_info.json']
  stored = json.loads((out / 'run_info.json').read_text())
  assert stored['time_to_paper'] == {'epoch': 2, 'wall_s': 20.0}
  _run(local / 'default' / 'seed0', 'default', 0, 40.0, False)
  _run(local / 'baselines' / 'cca' / 'seed0', 'baselines/cca', 0, 30.0, False)
  runs = report.load_runs(local, committed)
  assert sorted(runs) == ['cca', 'default']
  assert [(r['seed'], r['traj2img']['top@1']) for r in runs['default']] == [(0, 41.0), (1, 51.0)]
  # A run found locally wins over its committed copy (the same run, or a newer one).
  report.commit_run(local / 'default' / 'seed0', dict(info, seed=0), committed)
  (local / 'default' / 'seed0' / 'eval' / 'results.json').write_text(
    json.dumps({'step': 10, 'num_test': 5, 'traj2img': {'top@1': 99.0}, 'img2traj': {}})
  )
  assert report.load_runs(local, committed)['default'][0]['traj2img']['top@1'] == 99.0
  assert [r['seed'] for r in report.load_runs(local)['default']] == [0]


def test_the_redraw_reference_joins_table1_as_a_row_without_seeds(tmp_path):
  metrics = {'top@1': 99.0, 'top@5': 100.0, 'top@10': 100.0}
  rows = [
    {'protocol': 'synthetic', 'seconds': 5.0, 'traj2img': metrics, 'img2traj': metrics},
    {'protocol': 'univ', 'seconds': 90.0, 'traj2img': metrics, 'img2traj': dict(metrics)},
  ]
  path = tmp_path / 'render_reference.json'
  path.write_text(json.dumps({'rows': rows}))
  row = report.reference_summary(path)
  assert row['seeds'] == [] and row['wall_s'] == [90.0]
  assert row['budget'] == {'rule': report.BUDGET_RULE, 'pairs': 0, 'epochs': 0, 'untrained': True}
  assert row['img2traj']['top@1'] == {'mean': 99.0, 'std': 0.0}
  table = report.markdown_table({'render_reference': row}, report.PAPER_TABLE1)
  assert (
    '| re-draw reference (knows the renderer; no training) | - | 99.0 / 100.0 / 100.0 |' in table
  )
  assert report.reference_summary(tmp_path / 'missing.json') is None


def test_a_runs_budget_is_read_from_its_last_checkpoint(tmp_path):
  mgr = checkpoint.manager(str(tmp_path))
  config = {'train': {'batch_size': 4, 'num_epochs': 2}}
  checkpoint.save(mgr, 3, {'w': np.zeros(2)}, {'total_steps': 7, 'run_config': config})
  checkpoint.save(mgr, 7, {'w': np.ones(2)}, {'total_steps': 7, 'run_config': config})
  assert report.run_budget(tmp_path) == {'rule': 'training pairs seen', 'pairs': 28, 'epochs': 2}
  meta = {'total_steps': 7, 'run_config': config, 'data_position': {'closed_form': True}}
  checkpoint.save(mgr, 8, {'w': np.ones(2)}, meta)
  assert report.run_budget(tmp_path) == {
    'rule': 'training pairs seen',
    'pairs': None,
    'epochs': 2,
    'closed_form': True,
  }


def _row(seed, pairs, closed_form=False):
  budget = {'rule': report.BUDGET_RULE, 'pairs': pairs, 'epochs': pairs // 1000}
  if closed_form:
    budget['closed_form'] = True
  machine = {'cpu_count': 2, 'jax_backend': 'cpu'}
  return {'seed': seed, 'command': 'x', 'machine': machine, 'budget': budget}


def test_the_budget_note_names_one_budget_or_says_they_differ():
  equal = {
    'default': [_row(0, 60_000), _row(1, 60_000)],
    'moco': [_row(0, 60_000)],
    'cca': [_row(0, 70_000, True)],
  }
  note = report._budget_note(equal)
  assert 'equal budgets, training pairs seen: 60,000 for every trained row (60 epochs)' in note
  assert 'closed-form rows read the training split once' in note
  unequal = {'default': [_row(0, 60_000)], 'moco': [_row(0, 10_000)]}
  assert 'UNEQUAL budgets, TRAJCROSS 60,000 pairs; MoCo 10,000 pairs' in report._budget_note(
    unequal
  )
  seeds_differ = {'default': [_row(0, 60_000), _row(1, 50_000)]}
  note = report._budget_note(seeds_differ)
  assert 'budget unknown for TRAJCROSS (not recorded, or not the same for each seed)' in note
  one = report._budget_note({'default': [_row(0, 1_000)]})
  assert 'training pairs seen: 1,000 for the bi-encoder (1 epoch);' in one
  assert 'closed-form fits only' in report._budget_note({'cca': [_row(0, 70_000, True)]})
  assert report._budget_note({}).startswith('Runs: no finished runs;')


def test_every_table_config_trains_the_defaults_budget():
  def pairs(name):
    config = importlib.import_module(f'configs.{name.replace("/", ".")}').get_config()
    return config.train.num_epochs * config.data.train_size, config.train.batch_size

  baselines = pathlib.Path(__file__).parents[1] / 'configs' / 'baselines'
  names = [f'baselines/{p.stem}' for p in baselines.glob('*.py') if p.stem not in ('common',)]
  assert len(names) == 6
  for name in (*report.TABLE2_ROWS, *names):
    assert pairs(name) == pairs('default'), name


def test_claims_say_whether_each_row_agrees_with_the_paper():
  assert report.verdict(70.5, 0.0, 1, 69.8) == 'agrees (+0.7)'
  assert report.verdict(71.7, 1.1, 2, 69.8) == 'agrees (+1.9)'
  assert report.verdict(71.7, 0.4, 2, 69.8) == 'above by 1.9'
  assert report.verdict(2.9, 0.0, 1, 4.29) == 'below by 1.4'
  row = {'mean': 50.0, 'std': 0.0}
  s = {'seeds': [0], 'traj2img': {'top@1': row}, 'img2traj': {'top@1': dict(row, mean=1.0)}}
  reference = {'seeds': [], 'traj2img': {'top@1': row}, 'img2traj': {'top@1': row}}
  table = report.claims_table({'moco': s, 'render_reference': reference}, report.PAPER_TABLE1)
  assert '| MoCo | 1 | above by 45.7 | below by 1.8 |' in table
  assert 're-draw' not in table  # No paper row, no claim.


def test_a_written_search_report_keeps_the_galleries_and_directions_not_measured_again(tmp_path):
  def row(n, direction, index, **source):
    return {'gallery_size': n, 'direction': direction, 'index': index, **source}

  written = {
    'builds': [
      {'gallery_size': 100, 'embed_items_per_s': {'image': 1.0}},  # Synthetic, both directions.
      {'gallery_size': 1000, 'directions': ['img2traj'], 'gallery_source': 'walks', 'command': 'c'},
    ],
    'rows': [
      row(100, 'traj2img', 'old'),
      row(100, 'img2traj', 'old'),
      row(1000, 'img2traj', 'old'),  # Written before rows named their source: the build's.
    ],
  }
  path = tmp_path / 'search_speed.json'
  path.write_text(json.dumps(written))
  new = row(100, 'img2traj', 'new', gallery_source='synthetic')
  measured = [{'gallery_size': 100, 'directions': ['img2traj'], 'rows': [new]}]
  kept = report.committed_search_results(path, measured)
  assert [(r['gallery_size'], r['directions']) for r in kept] == [
    (100, ['traj2img']),
    (1000, ['img2traj']),
  ]
  assert [r['rows'] for r in kept] == [
    [row(100, 'traj2img', 'old')],
    [row(1000, 'img2traj', 'old')],
  ]
  assert kept[1]['command'] == 'c'
  # A walks gallery of 100 measured now sits beside the synthetic one written before.
  walks = [{**measured[0], 'gallery_source': 'walks', 'directions': ['traj2img', 'img2traj']}]
  kept = report.committed_search_results(path, walks)
  assert [(r['gallery_size'], r['directions']) for r in kept][0] == (100, ['traj2img', 'img2traj'])
  assert report.committed_search_results(tmp_path / 'none.json', measured) == []


def test_a_result_names_its_cpu_and_its_widest_vector_extension():
  from benchmarks import machine

  x86 = (
    'processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\n'
  )
  assert machine.cpu(x86) == {'cpu_model': 'AMD EPYC', 'cpu_simd': 'avx2'}
  assert machine.cpu(x86.replace('avx2', 'avx2 avx512f avx512bw'))['cpu_simd'] == 'avx512'
  assert machine.cpu('processor\t: 0\nFeatures\t: fp asimd crc32\n') == {
    'cpu_model': 'unknown',
    'cpu_simd': 'neon',
  }


def test_the_changes_table_sets_each_variant_against_trajcross_and_fig3():
  def summary(seeds, t1, t5, t15, i1):
    def means(**by_k):
      return {k.replace('top', 'top@'): {'mean': v, 'std': 0.0} for k, v in by_k.items()}

    return {
      'seeds': seeds,
      'traj2img': means(top1=t1, top5=t5, top15=t15),
      'img2traj': means(top1=i1),
    }

  rows = {
    'default': summary([0, 1], 70.0, 90.0, 95.0, 72.0),
    'nogan': summary([0, 1, 2], 72.5, 90.0, 94.0, 71.0),
    'disc_cosine': summary([0], 69.0, 91.0, 95.5, 72.0),
  }
  table = report.changes_table(rows)
  assert '| nogan | 3 | +2.5 / +0.0 / -1.0 | -2.9 / -1.0 / -0.5 | -1.0 |' in table
  assert '| TRAJCROSS, classifier rate cosine | 1 | -1.0 / +1.0 / +0.5 | - | +0.0 |' in table
  assert 'TRAJCROSS |' not in table.replace('against TRAJCROSS |', '')
  assert report.changes_table({'nogan': rows['nogan']}) == ''
