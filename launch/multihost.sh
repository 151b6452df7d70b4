#!/usr/bin/env bash
# One process of a multi-process run (several hosts, or several processes on one host).
# Start it once per process, each with the same coordinator and count and its own id:
#
#   launch/multihost.sh --coordinator HOST:PORT --num_processes N --process_id I -- MAIN_ARGS...
#
# HOST:PORT is where process 0 listens (HOST must be reachable from every process; PORT free
# on it). Each process drives all devices of its host (JAX_LOCAL_DEVICE_IDS=0,1 narrows that)
# and reads only its slice of every batch; process 0 writes logs, metrics and results.
# MAIN_ARGS go to `python -m trajcross_jax.main` unchanged; --workdir must be storage that every
# host shares (checkpoints are written by all processes together), the dataset's data_dir may be
# shared (process 0 builds it once) or local to each host. A process that dies stops the others
# within TRAJCROSS_HEARTBEAT_TIMEOUT_S seconds (default 60); start all N again to resume from
# the latest checkpoint. See docs/scaling.md.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

coordinator='' num_processes='' process_id=''
while (($#)); do
  case "$1" in
    --coordinator | --num_processes | --process_id)
      if (($# < 2)); then
        echo "error: $1 needs a value" >&2
        exit 2
      fi
      declare "${1#--}=$2"
      shift 2
      ;;
    --coordinator=* | --num_processes=* | --process_id=*)
      name=${1%%=*}
      declare "${name#--}=${1#*=}"
      shift
      ;;
    --)
      shift
      break
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "error: unexpected argument '$1' (main's arguments go after --)" >&2
      exit 2
      ;;
  esac
done
for name in coordinator num_processes process_id; do
  if [[ -z ${!name} ]]; then
    echo "error: --$name is required; see $0 --help" >&2
    exit 2
  fi
done
if [[ $coordinator != *:* ]]; then
  echo "error: --coordinator=$coordinator must be HOST:PORT" >&2
  exit 2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# configs/*.py import `configs`, which lives in the repository root, not in the package.
export PYTHONPATH="${repo}${PYTHONPATH:+:${PYTHONPATH}}"
# Read by trajcross_jax.parallel.maybe_initialize_distributed, which checks their values.
export JAX_COORDINATOR_ADDRESS=$coordinator
export JAX_NUM_PROCESSES=$num_processes
export JAX_PROCESS_ID=$process_id
exec "${PYTHON:-python}" -m trajcross_jax.main "$@"
