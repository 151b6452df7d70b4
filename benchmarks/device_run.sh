#!/bin/bash
# The GPU figures of benchmarks/ in one call of a lent GPU machine, under 10 minutes (each part
# has a time limit: T_SPEED, T_RUN, T_SEARCH seconds):
#   1. train_speed at batch 1,024: JAX against the PyTorch peer on the GPU, at TF32 and at
#      bfloat16 matmul precision, with the GPU's measured float32 / TF32 / bfloat16 matmul rates;
#   2. the default config's whole run (benchmarks.reproduce --configs default): its wall time and
#      the epoch at which it passes the paper's row (metrics.jsonl);
#   3. search_speed on random-walk galleries of 2^20 and 4 x 2^20 pairs embedded by that run's
#      model: exact search on the GPU against PyTorch on the GPU and FAISS flat on the CPU cores.
# Run from the repository root, with the wheels of what the GPU image lacks in .whl/
# (benchmarks/results/gpu/README.md):  OUT=/some/dir bash benchmarks/device_run.sh
# Everything comes back as $OUT/log.txt and $OUT/bundle.tar.gz. Each part has its own time limit
# and the script goes on after a part fails or runs out of time, so one part cannot cost the rest.
set -u
OUT=${OUT:-/tmp/device_out}
W=${WORK:-/tmp/trajcross_gpu}
mkdir -p "$OUT" "$W/results"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.6 TF_CPP_MIN_LOG_LEVEL=1
START=$(date +%s)
stamp() { echo "=== $(($(date +%s) - START)) s: $*"; }
# The results so far, packed after each part: a call stopped at its limit still returns them.
pack() { tar -czf "$OUT/bundle.tar.gz" -C "$W" results; }

if compgen -G '.whl/*.whl' >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
nvidia-smi | tee "$W/results/nvidia-smi.txt"
stamp 'imports'
python3 -c 'import jax, torch; print(jax.__version__, jax.devices(), torch.__version__, torch.cuda.is_available())' || exit 1
# One process per module: each defines its own absl flags.
for m in trajcross_jax.main benchmarks.train_speed benchmarks.search_speed faiss; do
  python3 -c "import $m" || exit 1
done

stamp 'train_speed'
timeout "${T_SPEED:-240}" python3 -m benchmarks.train_speed --batch=1024 --embed_batch=16384 --steps=10 \
  --rounds=3 --precisions=tensorfloat32,bfloat16 --matmul_rates=float32,tensorfloat32,bfloat16 \
  --matmul_size=8192 --output="$W/results/train_speed_gpu.json" 2>&1 | grep -v '^\s'
pack
stamp 'default run'
timeout "${T_RUN:-170}" python3 -m benchmarks.reproduce --configs default --runs_dir="$W/reproduce" \
  --data_dir="$W/tfds" --nowrite_readme 2>&1 | grep -v 'pairs_per_s' | tail -40
R="$W/reproduce/default/seed0"
mkdir -p "$W/results/default_seed0"
cp "$R"/metrics.jsonl "$R"/eval/results.json "$R"/run_info.json "$W/results/default_seed0/" 2>/dev/null
pack

stamp 'search_speed'
timeout "${T_SEARCH:-140}" python3 -m benchmarks.search_speed --gallery_source=walks --chunk=65536 \
  --sizes=1048576,4194304 --noapproximate --single_queries=20 --workdir="$R" \
  --runs_dir="$W/search" --results_dir="$W/results/search" 2>&1 | grep -v 'search_speed.py'
mkdir -p "$W/results/search"
cp "$W"/search/result-*.json "$W/results/search/" 2>/dev/null
stamp 'done'
pack
ls -la "$OUT"
