"""Where one member's training step spends the device's time: the top kernels, and the idle
share.

    python benchmarks/step_profile.py --model=inception_small --steps=20 \
        --json=OUTDIR/profile.json

The engine's own program (assemble.prepare; one member, `sequential`, CIFAR-shaped synthetic
data on the device, batch 128, random labels). After compilation and `--warmup` steps,
`--steps` steps are dispatched under jax.profiler.trace and waited for. Kernels: on a GPU,
the events on the trace's device streams (/device:GPU:k, threads "Stream ...": one event per
kernel or copy); on a CPU, the events named after an instruction of the compiled program
(XLA:CPU's thunks; Eigen's multi-threaded convolutions have none). `idle` = 1 - (the union of
the kernels' intervals) / (the traced steps' wall time): the share of a step in which the
device ran nothing -- dispatch, launch and synchronization gaps, which command buffers (CUDA
graphs) and more work per launch (members in one program) can close.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import sys
import tempfile
import time

import jax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import host  # noqa: E402
from engine_throughput import synthetic_config  # noqa: E402
from layer_profile import _hlo_instructions  # noqa: E402
from record import write_result  # noqa: E402

from rethinking_jax.engine import assemble  # noqa: E402


def _events(trace_dir: str) -> list[dict]:
  path = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)[0]
  with gzip.open(path) as f:
    events = json.load(f)
  return events["traceEvents"] if isinstance(events, dict) else events


def kernel_events(events: list[dict], instructions) -> tuple[list[dict], str]:
  """(the kernel events, where they came from): device streams where the trace has any,
  else the host events named after one of `instructions` (the program's HLO)."""
  names = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events
           if e.get("ph") == "M" and e.get("name") in ("process_name", "thread_name")
           and "name" in e.get("args", {})}
  devices = {pid for (pid, tid), name in names.items()
             if tid is None and name.startswith("/device:")}
  streams = {key for key, name in names.items()
             if key[0] in devices and key[1] is not None and name.startswith("Stream")}
  spans = [e for e in events if e.get("ph") == "X" and "dur" in e]
  if streams:
    return [e for e in spans if (e["pid"], e.get("tid")) in streams], "device streams"
  return [e for e in spans if e.get("name") in instructions], "host thunks (XLA:CPU)"


def busy_microseconds(spans: list[dict]) -> float:
  """The length of the union of the spans' [ts, ts + dur) intervals."""
  total, end = 0.0, float("-inf")
  for start, stop in sorted((e["ts"], e["ts"] + e["dur"]) for e in spans):
    if stop <= end:
      continue
    total += stop - max(start, end)
    end = stop
  return total


def profile(model: str, steps: int, warmup: int, batch_size: int, num_train: int,
            top: int) -> dict:
  run = assemble.prepare(synthetic_config(model, 1, "sequential", num_train, batch_size))
  programs, state = run.programs, run.programs.init(run.members)
  args = (run.members, run.inputs)
  state = jax.block_until_ready(programs.train_chunk(state, *args, 0, warmup))  # + compile
  hlo = programs._compiled["chunk"].as_text()
  load_start = host.loadavg()
  with tempfile.TemporaryDirectory() as d:
    with jax.profiler.trace(d, create_perfetto_trace=True):
      start = time.perf_counter()
      state = jax.block_until_ready(programs.train_chunk(state, *args, warmup, steps))
      wall_us = (time.perf_counter() - start) * 1e6
    kernels, source = kernel_events(_events(d), _hlo_instructions(hlo))
  by_name = collections.defaultdict(lambda: [0.0, 0])
  for e in kernels:
    by_name[e["name"]][0] += e["dur"]
    by_name[e["name"]][1] += 1
  busy = busy_microseconds(kernels)
  kernel_total = sum(t for t, _ in by_name.values())
  rows = [{"kernel": name, "ms_per_step": t / 1e3 / steps, "calls_per_step": n / steps,
           "share_of_kernel_time": t / kernel_total if kernel_total else None}
          for name, (t, n) in sorted(by_name.items(), key=lambda kv: -kv[1][0])[:top]]
  return {"model": model, "steps": steps, "batch_size": batch_size,
          "step_loop": programs.step_loop, "kernel_source": source,
          "ms_per_step": wall_us / 1e3 / steps, "busy_ms_per_step": busy / 1e3 / steps,
          "idle_fraction": max(0.0, 1 - busy / wall_us), "kernels_per_step": len(kernels) / steps,
          "examples_per_second": steps * batch_size / (wall_us / 1e6),
          "loadavg_start": load_start, "loadavg_end": host.loadavg(), "top_kernels": rows}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default="inception_small")
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--warmup", type=int, default=5)
  p.add_argument("--batch_size", type=int, default=128)
  p.add_argument("--num_train", type=int, default=4096)
  p.add_argument("--top", type=int, default=15)
  p.add_argument("--json", default="")
  host.add_flags(p)
  a = p.parse_args(argv)
  setting = host.configure(a.threads, a.pin, a.conv_impl)
  row = {**profile(a.model, a.steps, a.warmup, a.batch_size, a.num_train, a.top), **setting}
  print(f"{a.model}: {row['ms_per_step']:.2f} ms per step ({row['step_loop']} loop), kernels "
        f"busy {row['busy_ms_per_step']:.2f} ms, idle {100 * row['idle_fraction']:.1f}%, "
        f"{row['kernels_per_step']:.0f} kernels per step ({row['kernel_source']})")
  for k in row["top_kernels"]:
    print(f"  {k['ms_per_step']:8.3f} ms  {k['calls_per_step']:5.1f}x  "
          f"{100 * (k['share_of_kernel_time'] or 0):5.1f}%  {k['kernel'][:90]}")
  return write_result(a.json, "step_profile", a, [row])


if __name__ == "__main__":
  main()
