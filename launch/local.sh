#!/usr/bin/env bash
# One host, one process, every local device (all GPUs, or the CPU).
#
#   launch/local.sh --config configs/default.py --workdir runs/x --config.train.batch_size=512
#
# The arguments go to `python -m trajcross_jax.main` unchanged. train.batch_size is the global
# batch, split over all devices: it must divide by their number. Run the same command again to
# resume from the latest checkpoint in --workdir. Restrict the devices with
# CUDA_VISIBLE_DEVICES=0,1 launch/local.sh ...; set PYTHON to use another interpreter.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# configs/*.py import `configs`, which lives in the repository root, not in the package.
export PYTHONPATH="${repo}${PYTHONPATH:+:${PYTHONPATH}}"
# One process: not a member of a multi-process run, whatever the environment says.
unset JAX_COORDINATOR_ADDRESS JAX_NUM_PROCESSES JAX_PROCESS_ID
exec "${PYTHON:-python}" -m trajcross_jax.main "$@"
