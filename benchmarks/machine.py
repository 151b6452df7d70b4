"""What a benchmark ran on, recorded beside every figure it writes, how it times, and the
command by which it runs the project's entry point."""

import os
import pathlib
import platform
import sys
import time
from collections.abc import Callable

import jax
import numpy as np


def describe() -> dict[str, object]:
  """CPU count, platform, library versions and the JAX devices."""
  return {
    'cpu_count': os.cpu_count(),
    'platform': platform.platform(),
    'processor': platform.processor() or platform.machine(),
    'python': platform.python_version(),
    'numpy': np.__version__,
    'jax': jax.__version__,
    'jax_backend': jax.default_backend(),
    'devices': [d.device_kind for d in jax.devices()],
  }


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
