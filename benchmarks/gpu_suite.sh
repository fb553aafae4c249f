#!/usr/bin/env bash
# The member-scaling suite for one accelerator, sized for one 10-minute device call:
#   bash benchmarks/gpu_suite.sh OUTDIR [--tiny|--cpu]  (--tiny: seconds, on a CPU; a test.
#   --cpu: the same table on a 2-core CPU, every row >= 5 s of timed work on that CPU:
#   MLP on 50,000 images x 5 epochs (E = 2, 8; one thread ran one member at 37,546 ex/s,
#   2.7 s for 2 epochs, 2026-12-04), AlexNet on 2,048 x 3 epochs (E = 2, 8), the small
#   Inception on 512 x 2 epochs (E = 2, 4, sequential only -- its vmapped
#   and unrolled programs compile for minutes there), AlexNet without vmap (0.2-0.3x one
#   member on XLA:CPU, measured), member_conv without lax.map)
#   THREADS=N and PIN=CORES (e.g. THREADS=1 PIN=1) go to every part (benchmarks/host.py:
#   both sides pinned alike); PARTS=a,b runs those parts only. CMDBUF=1 runs every part with
#   XLA:GPU's command buffers (CUDA graphs) on for every kind of command but collectives,
#   from graphs of one command up ($CMDBUF_FLAGS; which ops a command buffer may hold is
#   XLA's call -- compare the `profile` part's idle share with and without).
# Parts, most important first, each under its own time limit (`timeout`: one slow part cannot
# cost the later ones) and each writing OUTDIR/<part>.json as rows finish (a part cut by its
# limit keeps the rows it reached, "partial": true):
#   profile        one small-Inception member's step under jax.profiler: the top kernels by
#                  time and the share of the step the device is idle (step_profile.py)
#   formulations   the small Inception at E = 1, 4, 8 in every member strategy: sequential,
#                  vmap, hybrid, patches, unrolled, streams (engine_throughput.py)
#   formulations_cmdbuf  the same at E = 8 with command buffers on ($CMDBUF_FLAGS)
#                  (--tiny / --cpu: AlexNet at E = 1, 2 / 1, 4, without vmap and streams)
#   member_conv    every convolution of the small Inception and AlexNet, E = 1, 8, per
#                  formulation (vmap / map / unrolled / patches), float32 and bfloat16
#   mlp            MLP 1x512, E = 1, 2, 4, 8, 32 (vmap, auto), PyTorch typical/optimized/expert
#   inception      small Inception, E = 2, 4, 8 (vmap, unrolled, sequential), PyTorch forms
#   inception_bf16 the same in bfloat16 (E = 8)
#   alexnet        AlexNet, E = 2, 4, 8 (vmap, unrolled, sequential), PyTorch forms
# A GPU call runs profile, formulations and formulations_cmdbuf by default (~9 minutes); the
# memorization parts against PyTorch take a second call:
#   PARTS=mlp,inception,alexnet,member_conv bash benchmarks/gpu_suite.sh OUTDIR2
# then OUTDIR/summary.md: one table of every row (examples/s, vs one member, vs the fastest
# PyTorch form, final train accuracy, MFU), the profile and the formulations.
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_suite.sh OUTDIR [--tiny|--cpu]}
MODE=${2:-}
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" -c "import jax" 2>/dev/null || {
  echo "error: PYTHON=$PY cannot import jax (activate the venv, or PYTHON=.venv/bin/python)" >&2
  exit 2; }
mkdir -p "$OUT"
if [ "$MODE" = "--tiny" ]; then
  N=256; EPOCHS=2; CONV=(--tiny --models=alexnet_small); E_MLP=2; E_CONV=2; E_BF16=2
  S_CONV=unrolled; S_BF16=sequential; S_ALEX=vmap  # one strategy each: compile time
  LIMIT=(member_conv=120 mlp=120 inception=240 inception_bf16=240 alexnet=120)
  SUB_MODELS=alexnet_small  # inception parts run AlexNet in --tiny (the small Inception
                            # compiles for minutes on a CPU)
  F_MODEL=alexnet_small; F_N=256; F_E=1,2; F_E_CMDBUF=2; F_S=sequential,hybrid,patches
  F_S_CMDBUF=sequential  # the flags reach the rows; the strategies are formulations' (72 -> 20 s)
  # (streams runs on GPUs only: strategies.STREAM_PLATFORMS)
  PROFILE=(--model=alexnet_small --steps=3 --warmup=1 --num_train=256)
  LIMIT+=(profile=120 formulations=240 formulations_cmdbuf=120)
  DEFAULT_PARTS=profile,formulations,formulations_cmdbuf,member_conv,mlp,inception,inception_bf16,alexnet
elif [ "$MODE" = "--cpu" ]; then
  N=2048; EPOCHS=2; E_MLP=2,4,8
  # lax.map's convolutions with gradients ran 17-53x slower than unrolled ones on XLA:CPU
  # (cpu_suite/log.txt, 2026-12-02): timing them cost the part its limit within AlexNet's
  # second layer
  CONV=(--models=alexnet_small --members=1,4 --formulations=vmap,unrolled,patches --repeats=2)
  E_CONV=2,4; E_BF16=2
  S_CONV=sequential; S_BF16=sequential; S_ALEX=unrolled,sequential
  LIMIT=(member_conv=240 mlp=600 inception=900 inception_bf16=300 alexnet=900)
  SUB_MODELS=inception_small
  N=50000; EPOCHS_MLP=5; E_MLP=2,8  # >= 5 s per row, 1 thread or 2
  N_CONV=512; N_ALEX=2048; EPOCHS_ALEX=3; E_ALEX=2,8  # one AlexNet member: 4.2 s for
  # 1,024 x 3 at one thread (2026-12-04)
  F_MODEL=alexnet_small; F_N=2048; F_E=1,4; F_E_CMDBUF=4; F_S=sequential,unrolled,hybrid,patches
  PROFILE=(--model=alexnet_small --steps=20 --warmup=3 --num_train=2048)
  LIMIT+=(profile=300 formulations=900 formulations_cmdbuf=300)
  DEFAULT_PARTS=profile,formulations,member_conv,mlp,inception,inception_bf16,alexnet
else
  N=50000; EPOCHS=4; CONV=(--members=1,8 --dtypes=float32,bfloat16 --repeats=5); E_MLP=2,4,8,32
  E_CONV=2,4,8; E_BF16=8
  S_CONV=vmap,unrolled,sequential; S_BF16=unrolled,sequential; S_ALEX=$S_CONV
  LIMIT=(member_conv=120 mlp=100 inception=150 inception_bf16=80 alexnet=80)
  SUB_MODELS=inception_small
  # One H200 ran one small-Inception member at 26k ex/s (an earlier week): 8,192 images x
  # (1 warm-up + 2 timed epochs) is ~1 s of timed work per member; 13 rows with their
  # compilations (unrolled and streams last: theirs grow with E)
  F_MODEL=inception_small; F_N=8192; F_E=1,4,8; F_E_CMDBUF=8
  F_S=sequential,vmap,hybrid,patches,unrolled,streams
  PROFILE=(--model=inception_small --steps=50 --warmup=10 --num_train=8192)
  LIMIT+=(profile=90 formulations=300 formulations_cmdbuf=150)
  DEFAULT_PARTS=profile,formulations,formulations_cmdbuf
fi
CMDBUF_FLAGS="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN"
CMDBUF_FLAGS+=" --xla_gpu_graph_min_graph_size=1"
[ "${CMDBUF:-0}" = 1 ] && export XLA_FLAGS="${XLA_FLAGS:-} $CMDBUF_FLAGS"
HOST=(--threads="${THREADS:-0}")
[ -n "${PIN:-}" ] && HOST+=(--pin="$PIN")
want() { [[ ",${PARTS:-$DEFAULT_PARTS}," == *",$1,"* ]]; }
limit() { local kv; for kv in "${LIMIT[@]}"; do [ "${kv%%=*}" = "$1" ] && echo "${kv#*=}"; done; }
{
  echo "gpu_suite $(date -u +%FT%TZ) mode=${MODE:-full} threads=${THREADS:-default}" \
    "pin=${PIN:-none} parts=${PARTS:-$DEFAULT_PARTS} cmdbuf=${CMDBUF:-0}" \
    "load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) XLA_FLAGS=${XLA_FLAGS:-}"
  $PY -c "import jax; print('jax', jax.__version__, jax.devices())"
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" \
    2>/dev/null || echo "torch not installed: PyTorch entries skipped"
} | tee "$OUT/log.txt"

part() {  # part NAME COMMAND...: runs COMMAND under NAME's time limit, logs its status
  local name=$1; shift
  want "$name" || return 0
  local start=$SECONDS
  echo "part $name: limit $(limit "$name") s: $*" | tee -a "$OUT/log.txt"
  timeout --signal=TERM --kill-after=10 "$(limit "$name")" "$@" 2>&1 | grep -v "^WARNING" \
    | tee -a "$OUT/log.txt"
  local rc=${PIPESTATUS[0]}
  local status=done; [ "$rc" = 124 ] && status="stopped by its time limit"
  [ "$rc" != 0 ] && [ "$rc" != 124 ] && status="failed (exit $rc)"
  echo "part $name: $status after $(( SECONDS - start )) s" | tee -a "$OUT/log.txt"
}
MEM=(benchmarks/memorization.py --num_train=$N --max_epochs=${EPOCHS_MLP:-$EPOCHS} --lr=0.01
     "${HOST[@]}")
MEM_CONV=(benchmarks/memorization.py --num_train=${N_CONV:-$N} --max_epochs=$EPOCHS --lr=0.01
          "${HOST[@]}")
MEM_ALEX=(benchmarks/memorization.py --num_train=${N_ALEX:-${N_CONV:-$N}}
          --max_epochs=${EPOCHS_ALEX:-$EPOCHS} --lr=0.01 "${HOST[@]}")
FORMS=(benchmarks/engine_throughput.py --models=$F_MODEL --num_train=$F_N
       --alexnet_num_train=$F_N --epochs=1 --repeats=2 --strategies=$F_S "${HOST[@]}")
part profile $PY benchmarks/step_profile.py "${PROFILE[@]}" "${HOST[@]}" \
  --json="$OUT/profile.json"
part formulations $PY "${FORMS[@]}" --members=$F_E --json="$OUT/formulations.json"
part formulations_cmdbuf env XLA_FLAGS="${XLA_FLAGS:-} $CMDBUF_FLAGS" $PY "${FORMS[@]}" \
  --strategies="${F_S_CMDBUF:-$F_S}" --members=$F_E_CMDBUF --json="$OUT/formulations_cmdbuf.json"
part member_conv $PY benchmarks/member_conv.py "${CONV[@]}" "${HOST[@]}" \
  --json="$OUT/member_conv.json"
part mlp $PY "${MEM[@]}" --models=mlp_1x512 --members=$E_MLP --strategies=vmap,auto \
  --json="$OUT/mlp.json"
part inception $PY "${MEM_CONV[@]}" --models=$SUB_MODELS --members=$E_CONV \
  --strategies=$S_CONV --json="$OUT/inception.json"
part inception_bf16 $PY "${MEM_CONV[@]}" --models=$SUB_MODELS --members=$E_BF16 \
  --strategies=$S_BF16 --dtype=bfloat16 --json="$OUT/inception_bf16.json"
part alexnet $PY "${MEM_ALEX[@]}" --models=alexnet_small --members=${E_ALEX:-$E_CONV} \
  --strategies=$S_ALEX --json="$OUT/alexnet.json"
$PY benchmarks/suite_summary.py "$OUT" | tee "$OUT/summary.md"
echo "done: $(ls "$OUT")" | tee -a "$OUT/log.txt"
