"""What a benchmark ran on, recorded beside every figure it writes, how it times, and the
command by which it runs the project's entry point."""

import os
import pathlib
import platform
import subprocess
import sys
import time
from collections.abc import Callable

import jax
import numpy as np
from absl import logging

REPO = pathlib.Path(__file__).resolve().parents[1]


def describe() -> dict[str, object]:
  """CPU count, model and vector extension, platform, library versions and the JAX devices."""
  return {
    'cpu_count': os.cpu_count(),
    **cpu(),
    'platform': platform.platform(),
    'processor': platform.processor() or platform.machine(),
    'python': platform.python_version(),
    'numpy': np.__version__,
    'jax': jax.__version__,
    'jax_backend': jax.default_backend(),
    'devices': [d.device_kind for d in jax.devices()],
  }


def cpu(cpuinfo: str | None = None) -> dict[str, str]:
  """The CPU's model name and widest vector extension, from /proc/cpuinfo (or the text given;
  empty where there is none): the same 2 cores ran FAISS IndexFlatIP at 7-9 queries/s over 10M
  vectors on one machine and 42 on another (benchmarks/results/search_speed.md)."""
  if cpuinfo is None:
    try:
      cpuinfo = pathlib.Path('/proc/cpuinfo').read_text()
    except OSError:
      return {}
  fields = {}
  for line in cpuinfo.splitlines():
    key, _, value = line.partition(':')
    fields.setdefault(key.strip(), value.strip())
  flags = set((fields.get('flags') or fields.get('Features') or '').split())
  simd = next((name for name, flag in SIMD if flag in flags), 'none known')
  return {'cpu_model': fields.get('model name', 'unknown'), 'cpu_simd': simd}


# Vector extensions, widest first: (name, /proc/cpuinfo flag).
SIMD = (('avx512', 'avx512f'), ('avx2', 'avx2'), ('avx', 'avx'), ('sve', 'sve'), ('neon', 'asimd'))


def seconds(fn: Callable[[], object]) -> float:
  """Wall seconds of one call of fn (block on JAX results inside fn)."""
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def main_command(config: str, workdir: pathlib.Path | str, *args: str) -> list[str]:
  """`python -m trajcross_jax.main` with configs/<config>.py, a workdir and further flags."""
  return [
    sys.executable,
    '-m',
    'trajcross_jax.main',
    f'--config=configs/{config}.py',
    f'--workdir={workdir}',
    *args,
  ]


def run(cmd: list[str]) -> float:
  """Runs a command line from the repository root, logged first; raises when it fails. Returns
  its wall seconds."""
  logging.info('%s', ' '.join(cmd))
  start = time.perf_counter()
  subprocess.run(cmd, cwd=REPO, check=True)
  return time.perf_counter() - start
