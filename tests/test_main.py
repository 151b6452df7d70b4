"""The whole entry point in fresh processes: train, eval from the checkpoint, kill and resume."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pytest

REPO = Path(__file__).resolve().parents[1]


def _command(workdir, data_dir, *args):
  return [
    sys.executable,
    '-m',
    'trajcross_jax.main',
    '--config',
    'configs/test.py',
    f'--workdir={workdir}',
    f'--config.data.data_dir={data_dir}',
    *args,
  ]


def _main(workdir, data_dir, *args, check=True):
  cmd = _command(workdir, data_dir, *args)
  return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=check, timeout=300)


def _final_params(workdir):
  steps = sorted(int(p.name) for p in (Path(workdir) / 'checkpoints').iterdir() if p.name.isdigit())
  restored = ocp.StandardCheckpointer().restore(
    Path(workdir) / 'checkpoints' / str(steps[-1]) / 'state'
  )
  return steps[-1], restored['params']


def test_train_then_eval_in_a_fresh_process(tmp_path, synthetic_data_dir):
  work = tmp_path / 'w'
  _main(work, synthetic_data_dir, '--mode=train', '--config.train.eval_every_epochs=1')
  assert (work / 'metrics.jsonl').exists() and (work / 'training_curves.png').exists()
  records = [json.loads(x) for x in (work / 'metrics.jsonl').read_text().splitlines()]
  logged = [r for r in records if 'loss' in r]
  assert {'loss', 'contrastive', 'adversarial', 'disc_acc', 'pairs_per_s', 'eta_s'} <= set(
    logged[-1]
  )
  # The test split evaluated after each of configs/test.py's 2 epochs of 4 steps.
  evaluated = [r for r in records if 'split' in r]
  assert [(r['step'], r['split']) for r in evaluated] == [(4, 'test'), (8, 'test')]
  assert not (work / 'eval').exists()
  run = _main(work, synthetic_data_dir, '--mode=eval')
  results = json.loads((work / 'eval' / 'results.json').read_text())
  assert results['step'] == 8 and results['num_test'] == 48
  for direction in ('traj2img', 'img2traj'):
    r = results[direction]
    assert set(r) >= {'top@1', 'top@5', 'top@10', 'mean_rank', 'median_rank', 'mrr'}
    for k in (1, 5, 10):  # The last evaluation along the run saw the same parameters.
      assert evaluated[-1][f'eval_{direction}_top@{k}'] == pytest.approx(r[f'top@{k}'])
    assert 0 <= r['top@1'] <= r['top@5'] <= r['top@10'] <= 100
    assert 1 <= r['mean_rank'] <= 48
  assert 'traj2img' in run.stderr  # The table is logged.


def test_a_hard_dataset_trains_and_evaluates_and_a_clean_model_is_scored_on_it(
  tmp_path, trained_workdir
):
  hard = ('--config.data.name=synthetic_hard',)
  data = tmp_path / 'tfds'
  # A share of the training pairs drawn clean: the mixed step runs through main.
  _main(tmp_path / 'hard', data, '--mode=train', *hard, '--config.train.clean_fraction=0.5')
  _main(tmp_path / 'hard', data, '--mode=eval', *hard)
  # Robustness: a model trained on clean pairs (configs/test.py), scored on hard pairs.
  shutil.copytree(trained_workdir, tmp_path / 'clean')
  _main(tmp_path / 'clean', data, '--mode=eval', *hard)
  for run in ('hard', 'clean'):
    results = json.loads((tmp_path / run / 'eval' / 'results.json').read_text())
    assert results['dataset'].startswith('trajcross/synthetic_hard-') and results['num_test'] == 48
    for direction in ('traj2img', 'img2traj'):
      assert 0 <= results[direction]['top@1'] <= results[direction]['top@10'] <= 100


def test_killed_run_resumes_to_the_same_parameters(tmp_path, synthetic_data_dir):
  overrides = (
    '--mode=train',
    '--config.train.num_epochs=8',
    '--config.train.checkpoint_every_steps=2',
  )
  _main(tmp_path / 'straight', synthetic_data_dir, *overrides)
  total, reference = _final_params(tmp_path / 'straight')
  assert total == 32

  killed = tmp_path / 'killed'
  cmd = _command(killed, synthetic_data_dir, *overrides)
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckpts = killed / 'checkpoints'
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if ckpts.exists() and any(p.name.isdigit() and int(p.name) >= 4 for p in ckpts.iterdir()):
      break
    time.sleep(0.01)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  steps = [int(p.name) for p in ckpts.iterdir() if p.name.isdigit()]
  assert steps and max(steps) < total, f'the run was not interrupted: checkpoints {steps}'

  _main(killed, synthetic_data_dir, *overrides)
  step, resumed = _final_params(killed)
  assert step == total
  flat_ref = ocp.tree.to_flat_dict(reference)
  flat_res = ocp.tree.to_flat_dict(resumed)
  assert flat_ref.keys() == flat_res.keys()
  for k in flat_ref:
    np.testing.assert_array_equal(flat_res[k], flat_ref[k], err_msg=str(k))


@pytest.mark.parametrize(
  'override,message',
  [
    ('--config.train.batch_sise=4', 'batch_sise'),
    ('--config.train.batch_size=-4', 'config.train.batch_size=-4: must be a positive number'),
    ('--config.model.traj_shape_branch=mlp', "traj_shape_branch='mlp'"),
  ],
)
def test_bad_config_is_a_short_clear_error(tmp_path, override, message):
  run = _main(tmp_path, tmp_path, override, check=False)
  assert run.returncode != 0
  assert message in run.stderr
  assert 'Traceback' not in run.stderr


def test_a_bad_track_file_is_one_line_with_file_and_line(tmp_path):
  bad = tmp_path / 'mine.txt'
  bad.write_text('0 1 1.0 2.0\n10 1 1.5 oops\n')
  run = subprocess.run(
    [
      sys.executable,
      '-m',
      'trajcross_jax.main',
      '--config',
      'configs/custom.py',
      f'--workdir={tmp_path / "w"}',
      f'--config.data.data_dir={tmp_path / "tfds"}',
      f'--config.data.files={bad}',
      '--mode=prepare',
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert run.returncode != 0
  assert f"error: {bad}:2: y 'oops' is not a number" in run.stderr
  assert 'Traceback' not in run.stderr


def test_a_missing_file_is_one_line(tmp_path):
  run = _main(tmp_path / 'w', tmp_path / 'tfds', '--mode=eval', check=False)
  assert run.returncode != 0
  assert 'error: no checkpoint in' in run.stderr and 'Traceback' not in run.stderr
