"""Tables built across machines: finished runs committed, and merged with local ones."""

import json

from benchmarks import report


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
  assert row['img2traj']['top@1'] == {'mean': 99.0, 'std': 0.0}
  table = report.markdown_table({'render_reference': row}, report.PAPER_TABLE1)
  assert (
    '| re-draw reference (knows the renderer; no training) | - | 99.0 / 100.0 / 100.0 |' in table
  )
  assert report.reference_summary(tmp_path / 'missing.json') is None
