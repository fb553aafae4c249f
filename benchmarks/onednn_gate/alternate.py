"""The gate's step timing, alternated: XLA's convolutions (`custom`) against the prototype's
(`onednn`), one SGD step of one member at batch 128, ORDER forms built in one process, then
4 rounds of 6 steps each, alternated; prints examples/s per form and round.

    python benchmarks/onednn_gate/alternate.py onednn,custom   # M=alexnet_small, T=2, TORCH=1
M: the model (inception_small); T: threads (1: pinned to core PIN, default 1; else unpinned);
TORCH=1
imports torch first (what it does to oneDNN's speed: benchmarks/RESULTS.md).
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), os.path.dirname(HERE)]

import host  # noqa: E402

THREADS = int(os.environ.get("T", "1"))
host.configure(THREADS, os.environ.get("PIN", "1") if THREADS == 1 else "", "eigen")
if os.environ.get("TORCH"):
  import torch  # noqa: F401

import layer_profile  # noqa: E402

order = sys.argv[1].split(",") if len(sys.argv) > 1 else ["onednn", "custom"]
runs = {f: layer_profile.jax_step(os.environ.get("M", "inception_small"), f)[0] for f in order}
for run in runs.values():
  run(2)
print(f"load {host.loadavg()} threads {THREADS}")
for r in range(4):
  for form in order:
    start = time.perf_counter()
    runs[form](6)
    print(form, r, round(6 * layer_profile.BATCH / (time.perf_counter() - start), 1), flush=True)
