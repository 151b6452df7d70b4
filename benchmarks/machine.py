"""What a benchmark ran on, recorded beside every figure it writes, and how it times."""

import os
import platform
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
