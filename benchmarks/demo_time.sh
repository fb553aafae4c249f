#!/usr/bin/env bash
# How long `make demo` takes a new user: a fresh `git clone` of this checkout's HEAD, a fresh
# .venv (pip's own cache as this machine has it) and an empty compilation cache, with the CPU,
# the date and the load:
#   bash benchmarks/demo_time.sh        (TASKSET="taskset -c 1" to pin it to one core)
# Prints the install's seconds, the run's seconds and the seconds the run spent compiling.
set -uo pipefail
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
git clone -q . "$TMP/clone" || exit 1
echo "demo_time $(date -u +%FT%TZ) cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" \
  "($(nproc) cores) ${TASKSET:-unpinned} load $(cut -d' ' -f1-3 /proc/loadavg)"
cd "$TMP/clone"
start=$(date +%s.%N)
${TASKSET:-} make install > "$TMP/install.log" 2>&1 || { tail -3 "$TMP/install.log"; exit 1; }
installed=$(date +%s.%N)
RETHINKING_JAX_COMPILE_CACHE="$TMP/cache" ${TASKSET:-} make demo > "$TMP/demo.log" 2>&1 \
  || { tail -3 "$TMP/demo.log"; exit 1; }
done_at=$(date +%s.%N)
compile=$(grep -o "compiled the [a-z_]* program in [0-9.]* s" "$TMP/demo.log" \
  | awk '{s += $(NF-1)} END {printf "%.1f", s}')
awk -v a="$start" -v b="$installed" -v c="$done_at" -v k="$compile" 'BEGIN {
  printf "make demo from a fresh clone: %.0f s (install %.0f s, run %.0f s, of it %s s compiling)\n",
         c - a, b - a, c - b, k}'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
