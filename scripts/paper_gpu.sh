#!/usr/bin/env bash
# The paper's convolutional results on real CIFAR-10, in parts sized for one GPU call each:
#   bash scripts/paper_gpu.sh OUTDIR [--tiny] [--budget=SECONDS] [--data=ARCHIVE] [--parts=...]
# See scripts/paper_gpu.py for the parts, their order and what each writes.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" scripts/paper_gpu.py "$@"
