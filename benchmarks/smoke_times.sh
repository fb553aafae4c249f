#!/usr/bin/env bash
# How long the :smoke suites take a user, cold (an empty compilation cache: a fresh clone or
# machine) and warm (the second time: engine/compile_cache.py), with the CPU and the load:
#   bash benchmarks/smoke_times.sh [SUITES]   (default: table1 figure1; PYTHON=.venv/bin/python)
# Each line: suite, cold or warm, wall seconds, the seconds its programs took to compile (the
# engine's log), /proc/loadavg before it. The workdirs and cache are temporary.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SUITES=${*:-table1 figure1}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "smoke_times $(date -u +%FT%TZ) cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" \
  "($(nproc) cores) conv_impl=${CONV_IMPL:-auto}"
for suite in $SUITES; do
  for pass in cold warm; do
    [ "$pass" = cold ] && rm -rf "$TMP/cache"
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    start=$(date +%s.%N)
    RETHINKING_JAX_COMPILE_CACHE="$TMP/cache" "$PY" -m rethinking_jax.main \
      --config="configs/$suite.py:smoke" --config.conv_impl="${CONV_IMPL:-auto}" \
      --workdir="$TMP/$suite-$pass" > "$TMP/log" 2>&1 || { tail -3 "$TMP/log"; exit 1; }
    wall=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {print a - b}')
    compile=$(grep -o "compiled the [a-z_]* program in [0-9.]* s" "$TMP/log" \
      | awk '{s += $(NF-1)} END {printf "%.1f", s}')
    printf "%-8s %-4s %6.1f s wall, %5s s compiling the engine's programs, load %s\n" \
      "$suite" "$pass" "$wall" "$compile" "$load"
  done
done
