"""What a benchmark ran on, recorded beside every figure it writes."""

import os
import platform

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
