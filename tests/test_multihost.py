"""Several processes on this machine, as on a cluster: launch/*.sh, jax.distributed with its
coordinator on 127.0.0.1 and gloo CPU collectives, two devices per process.

The two-process runs are module fixtures shared by the tests: a reference run (one process,
four devices), the same run as two processes of two devices, then a run whose process 1 is
killed and its restart.
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from trajcross_jax import parallel

REPO = Path(__file__).resolve().parents[1]
DEVICES_PER_PROCESS = 2
# configs/test.py: 8 steps of 16 pairs (4 per device); checkpoints at steps 2, 4, 6 and 8.
# Half the test pairs are near-duplicates at 2 m, so the per-example near-duplicate metrics
# depend on each embedding coming back in its example's place.
TOTAL_STEPS = 8
OVERRIDES = ('--config.train.checkpoint_every_steps=2', '--config.eval.near_duplicate_m=2.0')
RUN_TIMEOUT_S = 300  # Per launch: far above the ~30 s a run takes, so only a hang reaches it.
HEARTBEAT_S = 10  # TRAJCROSS_HEARTBEAT_TIMEOUT_S (and _SHUTDOWN_) of these runs.
STOP_WITHIN_S = HEARTBEAT_S + 30  # A survivor must be gone this long after its peer died.


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _env(cache_dir: Path, devices: int) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if k not in parallel.EXPLICIT_ENV}
  env.update(
    JAX_PLATFORMS='cpu',
    # -O0 in LLVM: a quarter of the compile time, the same numbers (both runs use it).
    XLA_FLAGS=f'--xla_force_host_platform_device_count={devices} '
    '--xla_backend_optimization_level=0 --xla_cpu_multi_thread_eigen=false',
    JAX_COMPILATION_CACHE_DIR=str(cache_dir),
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
    TRAJCROSS_HEARTBEAT_TIMEOUT_S=str(HEARTBEAT_S),
    TRAJCROSS_SHUTDOWN_TIMEOUT_S=str(HEARTBEAT_S),
  )
  return env


class Run:
  """One run of the entry point as `processes` processes, started by launch/*.sh."""

  def __init__(
    self, name, workdir: Path, data_dir, env, processes: int, mode='train_and_eval', extra=()
  ):
    self.workdir = workdir
    main_args = [
      '--config',
      'configs/test.py',
      f'--workdir={workdir}',
      f'--config.data.data_dir={data_dir}',
      f'--mode={mode}',
      *OVERRIDES,
      *extra,
    ]
    port = _free_port()
    self.logs = [workdir.parent / f'{name}.{i}.log' for i in range(processes)]
    self.procs = []
    for i in range(processes):
      if processes == 1:
        cmd = ['launch/local.sh', *main_args]
      else:
        cmd = [
          'launch/multihost.sh',
          f'--coordinator=127.0.0.1:{port}',
          f'--num_processes={processes}',
          f'--process_id={i}',
          '--',
          *main_args,
        ]
      with self.logs[i].open('w') as log:
        # The scripts exec python, so each pid is the process that a test may kill.
        self.procs.append(
          subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        )

  def wait(self, timeout: float = RUN_TIMEOUT_S) -> list[int]:
    """Exit codes; kills every process left after `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    try:
      return [p.wait(timeout=max(deadline - time.monotonic(), 0.1)) for p in self.procs]
    finally:
      self.kill()

  def kill(self) -> None:
    for p in self.procs:
      if p.poll() is None:
        p.kill()
        p.wait()

  def log(self, i: int) -> str:
    return self.logs[i].read_text()

  def check(self) -> 'Run':
    codes = self.wait()
    assert codes == [0] * len(codes), f'exit codes {codes}\n' + '\n'.join(
      f'--- process {i}:\n{self.log(i)[-3000:]}' for i in range(len(codes))
    )
    return self


def _checkpoint_steps(workdir: Path) -> list[int]:
  ckpts = workdir / 'checkpoints'
  return sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit()) if ckpts.exists() else []


def _state(workdir: Path, step: int) -> dict[tuple, np.ndarray]:
  """The train state saved at `step`, flat and as numpy, whatever devices saved it."""
  path = workdir / 'checkpoints' / str(step) / 'state'
  checkpointer = ocp.PyTreeCheckpointer()
  metadata = checkpointer.metadata(path)
  metadata = getattr(metadata, 'item_metadata', metadata)
  as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), metadata)
  state = checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=as_numpy))
  return ocp.tree.to_flat_dict(state)


def _results(workdir: Path) -> dict:
  return json.loads((workdir / 'eval' / 'results.json').read_text())


def _flat(results: dict) -> dict:
  return {
    (k, m): v
    for k, r in results.items()
    for m, v in (r.items() if isinstance(r, dict) else [('', r)])
  }


@pytest.fixture(scope='module')
def runs(tmp_path_factory, synthetic_data_dir):
  """The reference (1 process x 4 devices) and the same run as 2 processes x 2 devices."""
  root = tmp_path_factory.mktemp('multihost')
  cache = root / 'jax_cache'
  n = 2 * DEVICES_PER_PROCESS
  reference = Run('reference', root / 'reference', synthetic_data_dir, _env(cache, n), 1)
  two = Run('two', root / 'two', synthetic_data_dir, _env(cache, DEVICES_PER_PROCESS), 2)
  try:
    reference.check()
    two.check()
  finally:  # Leave no process behind when one run fails.
    reference.kill()
    two.kill()
  return dict(root=root, cache=cache, data_dir=synthetic_data_dir, reference=reference, two=two)


def test_two_processes_equal_one_process_with_the_same_global_batch(runs):
  reference, two = runs['reference'], runs['two']
  devices = 2 * DEVICES_PER_PROCESS
  assert f'JAX: 1 process(es), {devices} devices' in reference.log(0)
  assert f'JAX: 2 process(es), {devices} devices' in two.log(0)
  assert _checkpoint_steps(reference.workdir)[-1] == _checkpoint_steps(two.workdir)[-1] == 8
  expected, got = _state(reference.workdir, TOTAL_STEPS), _state(two.workdir, TOTAL_STEPS)
  assert expected.keys() == got.keys()
  assert any(k[0] == 'params' for k in got)
  # The same function of the same batches; the all-reduce over the devices adds in another
  # order in-process than over gloo (differences of ~3e-8 measured).
  for k in expected:
    np.testing.assert_allclose(got[k], expected[k], rtol=1e-5, atol=1e-6, err_msg=str(k))
  expected, got = _flat(_results(reference.workdir)), _flat(_results(two.workdir))
  assert got[('num_test', '')] == 48 and got[('step', '')] == TOTAL_STEPS
  assert got[('split', '')] == 'test'
  assert 0 < got[('near_dup_fraction', '')] < 1
  assert got.keys() == expected.keys()
  for k, v in expected.items():
    assert got[k] == (v if v is None or isinstance(v, str) else pytest.approx(v, rel=1e-6)), k


def test_only_process_0_writes_logs_metrics_and_results(runs):
  two = runs['two']
  records = [json.loads(x) for x in (two.workdir / 'metrics.jsonl').read_text().splitlines()]
  logged = [r['step'] for r in records if 'loss' in r]
  assert logged == list(range(2, TOTAL_STEPS + 1, 2))  # Each once.
  assert (two.workdir / 'training_curves.png').exists()
  assert (two.workdir / 'eval' / 'results.json').exists()
  chief, other = two.log(0), two.log(1)
  for line in (f'step {TOTAL_STEPS} (epoch', 'Wrote ', 'traj2img'):
    assert line in chief
    assert line not in other


def test_two_processes_embed_their_own_shards_of_one_gallery(runs):
  root, reference = runs['root'], runs['reference']
  shards = ('--config.embed.shard_size=16', '--config.embed.batch_size=8')
  outputs = {}
  for processes in (1, 2):
    out = root / f'gallery{processes}'
    env = _env(runs['cache'], 2 * DEVICES_PER_PROCESS // processes)
    run = Run(
      f'embed{processes}',
      reference.workdir,
      runs['data_dir'],
      env,
      processes,
      mode='embed',
      extra=(f'--config.embed.dir={out}', *shards),
    )
    run.check()
    outputs[processes] = (out, run)
  (one, _), (two, run) = outputs[1], outputs[2]
  # Process p wrote the shards i % 2 == p: 0 and 2, then 1.
  assert 'process 0: embedded shards [0, 2] of 3' in run.log(0)
  assert 'process 1: embedded shards [1] of 3' in run.log(1)
  names = sorted(p.name for p in one.iterdir())
  assert names == sorted(p.name for p in two.iterdir()) and len(names) == 10
  for name in names:
    if name.endswith('.npy'):  # Other device counts: the same numbers up to float order.
      np.testing.assert_allclose(np.load(two / name), np.load(one / name), rtol=1e-5, atol=1e-6)
    else:
      assert (two / name).read_text() == (one / name).read_text(), name


def test_a_killed_process_stops_the_other_and_a_restart_resumes(runs):
  root, two = runs['root'], runs['two']
  env = _env(runs['cache'], DEVICES_PER_PROCESS)
  killed = Run('killed', root / 'killed', runs['data_dir'], env, 2, mode='train')
  try:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not _checkpoint_steps(killed.workdir) and time.monotonic() < deadline:
      assert all(p.poll() is None for p in killed.procs), killed.log(0)[-3000:]
      time.sleep(0.05)
    killed.procs[1].send_signal(signal.SIGKILL)
    try:
      code = killed.procs[0].wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
      pytest.fail(f'process 0 still runs {STOP_WITHIN_S} s after process 1 was killed')
  finally:
    killed.kill()
  log = killed.log(0)
  assert code != 0, log[-3000:]
  # The survivor's error names its dead peer (task 1).
  assert 'Task 1 heartbeat timeout' in log or 'stopped sending heartbeats' in log, log[-3000:]
  steps = _checkpoint_steps(killed.workdir)
  assert steps and steps[-1] < TOTAL_STEPS, f'the run was not interrupted: checkpoints {steps}'

  restarted = Run('restarted', killed.workdir, runs['data_dir'], env, 2, mode='train').check()
  assert f'Resumed from the checkpoint at step {steps[-1]} of {TOTAL_STEPS}' in restarted.log(0)
  expected, got = _state(two.workdir, TOTAL_STEPS), _state(killed.workdir, TOTAL_STEPS)
  assert expected.keys() == got.keys()
  for k in expected:  # The same program on the same batches: the same bits.
    np.testing.assert_array_equal(got[k], expected[k], err_msg=str(k))


@pytest.mark.parametrize(
  'environ,expected',
  [
    ({}, None),
    ({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '1', 'SLURM_STEP_NODELIST': 'n1'}, None),
    (
      {'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '8', 'SLURM_STEP_NODELIST': 'n[1-2]'},
      {'cluster_detection_method': 'slurm'},
    ),
    (
      {
        'JAX_COORDINATOR_ADDRESS': 'n1:1234',
        'JAX_NUM_PROCESSES': '2',
        'JAX_PROCESS_ID': '1',
        'SLURM_NTASKS': '2',  # Explicit variables win over SLURM's.
        'SLURM_STEP_NODELIST': 'n[1-2]',
        'TRAJCROSS_HEARTBEAT_TIMEOUT_S': '5',
      },
      {
        'coordinator_address': 'n1:1234',
        'num_processes': 2,
        'process_id': 1,
        'cluster_detection_method': 'deactivate',
        'heartbeat_timeout_seconds': 5,
      },
    ),
  ],
)
def test_distributed_settings_from_the_environment(environ, expected):
  settings = parallel.distributed_settings(environ)
  if expected is None:
    assert settings is None
  else:
    assert settings == dict(settings, **expected)
    assert settings['shutdown_timeout_seconds'] == 60
    assert settings['initialization_timeout'] == 300


@pytest.mark.parametrize(
  'environ,message',
  [
    ({'JAX_COORDINATOR_ADDRESS': 'h:1'}, 'set but JAX_NUM_PROCESSES, JAX_PROCESS_ID not'),
    (
      {'JAX_COORDINATOR_ADDRESS': 'h:1', 'JAX_NUM_PROCESSES': '2', 'JAX_PROCESS_ID': '2'},
      r'JAX_PROCESS_ID=2 must be in \[0, JAX_NUM_PROCESSES=2\)',
    ),
    (
      {'JAX_COORDINATOR_ADDRESS': 'h:1', 'JAX_NUM_PROCESSES': 'two', 'JAX_PROCESS_ID': '0'},
      "JAX_NUM_PROCESSES='two' is not an integer",
    ),
  ],
)
def test_bad_distributed_settings_are_clear_errors(environ, message):
  with pytest.raises(ValueError, match=message):
    parallel.distributed_settings(environ)


def test_entry_point_reports_a_partial_multiprocess_environment_in_one_line(tmp_path):
  env = {k: v for k, v in os.environ.items() if k not in parallel.EXPLICIT_ENV}
  env.update(JAX_PLATFORMS='cpu', JAX_COORDINATOR_ADDRESS='127.0.0.1:1', JAX_NUM_PROCESSES='2')
  run = subprocess.run(
    ['python', '-m', 'trajcross_jax.main', '--config=configs/test.py', f'--workdir={tmp_path}'],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert run.returncode != 0
  message = 'error: JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES set but JAX_PROCESS_ID not'
  assert message in run.stderr
  assert 'Traceback' not in run.stderr


FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for python: records what a launch script passed on.
printf '%s\\n' "$JAX_COORDINATOR_ADDRESS" "$JAX_NUM_PROCESSES" "$JAX_PROCESS_ID" "$PYTHONPATH" \\
  "$@" > "$FAKE_OUT/${JAX_PROCESS_ID:-local}"
"""
FAKE_SRUN = """#!/usr/bin/env bash
# Stands in for srun: one task per node, each with its SLURM_PROCID.
while [[ $1 == --* ]]; do shift; done
for ((i = 0; i < SLURM_NTASKS; i++)); do SLURM_PROCID=$i "$@" & done
wait
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
printf 'node001\\nnode002\\n'
"""


@pytest.fixture
def fake_tools(tmp_path):
  """PATH and PYTHON that record, instead of run, what the launch scripts start."""
  bin_dir, out = tmp_path / 'bin', tmp_path / 'out'
  bin_dir.mkdir()
  out.mkdir()
  for name, text in (('python', FAKE_PYTHON), ('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
    (bin_dir / name).write_text(text)
    (bin_dir / name).chmod(0o755)
  env = {k: v for k, v in os.environ.items() if k not in parallel.EXPLICIT_ENV}
  env.update(PATH=f'{bin_dir}:{env["PATH"]}', PYTHON=str(bin_dir / 'python'), FAKE_OUT=str(out))

  def started(name):
    lines = (out / name).read_text().splitlines()
    return {'coordinator': lines[0], 'num': lines[1], 'id': lines[2], 'path': lines[3]}, lines[4:]

  return env, started


MAIN_ARGS = ['--config', 'configs/default.py', '--workdir', 'runs/a b', '--config.seed=3']


def test_multihost_sh_starts_the_entry_point_as_one_process_of_several(fake_tools):
  env, started = fake_tools
  cmd = ['launch/multihost.sh', '--coordinator', 'h0:1234', '--num_processes', '4']
  subprocess.run(
    [*cmd, '--process_id=3', '--', *MAIN_ARGS], cwd=REPO, env=env, check=True, timeout=30
  )
  variables, args = started('3')
  assert variables == {'coordinator': 'h0:1234', 'num': '4', 'id': '3', 'path': variables['path']}
  assert variables['path'].split(':')[0] == str(REPO)  # configs/ is importable from anywhere.
  assert args == ['-m', 'trajcross_jax.main', *MAIN_ARGS]


@pytest.mark.parametrize(
  'args,message',
  [
    (['--num_processes', '2', '--process_id', '0'], '--coordinator is required'),
    (['--coordinator', 'h0', '--num_processes', '2', '--process_id', '0'], 'must be HOST:PORT'),
    (['--coordinator', 'h0:1', '--num_processes', '2', '--process_id'], 'needs a value'),
    (['--coordinator', 'h0:1', '--workdir', 'x'], "unexpected argument '--workdir'"),
  ],
)
def test_multihost_sh_usage_errors(fake_tools, args, message):
  env, _ = fake_tools
  run = subprocess.run(
    ['launch/multihost.sh', *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=30
  )
  assert run.returncode == 2 and message in run.stderr


def test_local_sh_starts_one_process(fake_tools):
  env, started = fake_tools
  env = dict(env, JAX_COORDINATOR_ADDRESS='h0:1', JAX_NUM_PROCESSES='2', JAX_PROCESS_ID='1')
  subprocess.run(['launch/local.sh', *MAIN_ARGS], cwd=REPO, env=env, check=True, timeout=30)
  variables, args = started('local')
  assert (variables['coordinator'], variables['num'], variables['id']) == ('', '', '')
  assert args == ['-m', 'trajcross_jax.main', *MAIN_ARGS]


def test_slurm_sbatch_starts_one_process_per_node_from_slurms_variables(fake_tools, tmp_path):
  env, started = fake_tools
  env.update(
    SLURM_JOB_ID='1234',
    SLURM_JOB_NODELIST='node[001-002]',
    SLURM_JOB_NUM_NODES='2',
    SLURM_NTASKS='2',
    SLURM_SUBMIT_DIR=str(REPO),
  )
  # sbatch runs a copy of the script from elsewhere.
  script = tmp_path / 'slurm_script'
  script.write_text((REPO / 'launch' / 'slurm.sbatch').read_text())
  subprocess.run(['bash', str(script), *MAIN_ARGS], cwd=tmp_path, env=env, check=True, timeout=30)
  for i in ('0', '1'):
    variables, args = started(i)
    assert (variables['coordinator'], variables['num'], variables['id']) == (
      'node001:21234',
      '2',
      i,
    )
    assert args == ['-m', 'trajcross_jax.main', *MAIN_ARGS]
