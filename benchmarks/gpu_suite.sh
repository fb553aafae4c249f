#!/usr/bin/env bash
# One command for a GPU (or, with --tiny, a CPU smoke test of the same script):
#   bash benchmarks/gpu_suite.sh OUTDIR [--tiny]
# JAX vs PyTorch time-to-memorize for MLP 1x512 and small Inception on 50k CIFAR-shaped
# examples, JAX member strategies for E in {1, 6, 12}, float32 and bfloat16 compute. Writes
# OUTDIR/memorization_<dtype>.json, OUTDIR/matmul.json and OUTDIR/log.txt. Sized to finish
# within 10 minutes on one modern GPU (epoch caps: a run that has not memorized by then
# reports its throughput and "memorized": false).
set -euo pipefail
OUT=${1:?usage: benchmarks/gpu_suite.sh OUTDIR [--tiny]}
MODE=${2:-}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
PY=${PYTHON:-python}
if [ "$MODE" = "--tiny" ]; then
  RUNS=("mlp_1x512 256 2 2")                       # model num_train max_epochs members
  STRATEGIES=vmap
else
  RUNS=("mlp_1x512 50000 40 6,12" "inception_small 50000 8 6,12")
  STRATEGIES=vmap,map,sequential
fi
{
  echo "gpu_suite $(date -u +%FT%TZ) mode=${MODE:-full}"
  $PY -c "import jax; print('jax', jax.__version__, jax.devices())"
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" \
    2>/dev/null || echo "torch not installed: PyTorch entries skipped"
} | tee "$OUT/log.txt"
for dtype in float32 bfloat16; do
  for run in "${RUNS[@]}"; do
    read -r model n epochs members <<<"$run"
    $PY benchmarks/memorization.py --models="$model" --num_train="$n" --max_epochs="$epochs" \
      --members="$members" --strategies="$STRATEGIES" --dtype="$dtype" \
      --json="$OUT/memorization_${model}_${dtype}.json" 2>&1 | grep -v "^WARNING" \
      | tee -a "$OUT/log.txt"
  done
done
echo "done: $(ls "$OUT")" | tee -a "$OUT/log.txt"
