"""Engine throughput: E members in one program (each strategy) vs E single-member runs.

    python benchmarks/engine_throughput.py --models=mlp_1x512,alexnet_small \
        --members=1,4,8 --strategies=vmap,map,sequential --json=benchmarks/engine_throughput.json

CIFAR-shaped synthetic data (32x32x3 -> 28x28x3 crop), random labels, batch 128. For every
(model, E, strategy): compile time, then the median over `--repeats` of the time of `--epochs`
epochs, after one warm-up epoch. `vs_sequential_runs` = (E x time of the E=1 run of the same
model) / (time of the E-member run): above 1 means training the members together beats
training them one after another with the same code. `--input_pipelines=device,stream`
also times the streaming input path (host-fed batches, as for ImageNet) on the same data:
its cost over the device-resident path is the host reading and transfer per step.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time

import jax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import host  # noqa: E402
from record import write_result  # noqa: E402

from rethinking_jax import models  # noqa: E402
from rethinking_jax.configs import default  # noqa: E402
from rethinking_jax.engine import assemble  # noqa: E402


def synthetic_config(model, members, strategy, num_train, batch_size):
  """A run of `members` random-label members of `model` on CIFAR-shaped synthetic data
  (32x32x3, cropped to 28x28x3; 128 test images): what the engine benchmarks time."""
  c = default.get_config()
  c.dataset, c.synthetic_shape = "synthetic", (32, 32, 3)
  c.synthetic_train, c.synthetic_test = num_train, 128
  c.model, c.member_strategy, c.batch_size = model, strategy, batch_size
  c.randomizations = "random_labels"
  c.seeds = ",".join(str(s) for s in range(members))
  c.progress = False
  return c


def bench_one(model, members, strategy, num_train, epochs, batch_size, step_loop, repeats,
              input_pipeline="device", layer_impl="auto", conv_impl="auto"):
  c = synthetic_config(model, members, strategy, num_train, batch_size)
  c.step_loop = step_loop
  c.input_pipeline = input_pipeline
  c.layer_impl, c.conv_impl = layer_impl, conv_impl
  run = assemble.prepare(c)
  load_start = host.loadavg()
  programs, state = run.programs, run.programs.init(run.members)
  args = (run.members, run.inputs)
  steps = epochs * programs.spec.steps_per_epoch  # train_chunk counts steps, not epochs
  warm_up = programs.spec.steps_per_epoch
  state = jax.block_until_ready(programs.train_chunk(state, *args, 0, warm_up))  # + compile
  times = []
  for r in range(repeats):
    start = time.perf_counter()
    state = jax.block_until_ready(programs.train_chunk(state, *args, warm_up + r * steps, steps))
    times.append(time.perf_counter() - start)
  seconds = statistics.median(times)
  steps_taken = int(jax.device_get(state.step).max())  # what the timed calls trained, checked
  if steps_taken != warm_up + repeats * steps:
    raise RuntimeError(f"trained {steps_taken} steps, expected {warm_up + repeats * steps}")
  return {"model": model, "members": members, "strategy": strategy,
          "layer_impl": models.layer_impl_for(model, layer_impl),
          "loadavg_start": load_start, "loadavg_end": host.loadavg(),
          "timed_seconds": sum(times),
          "input_pipeline": input_pipeline, "step_loop": programs.step_loop, "seconds": seconds,
          "steps_per_second": steps / seconds,
          "examples_per_second": steps * batch_size * members / seconds,
          "compile_seconds": programs.compile_seconds}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--models", default="mlp_1x512,alexnet_small")
  p.add_argument("--members", default="1,4,8")
  p.add_argument("--strategies", default="vmap,map,sequential")
  p.add_argument("--num_train", type=int, default=4096)
  p.add_argument("--alexnet_num_train", type=int, default=512,
                 help="smaller training set for the conv net on a CPU")
  p.add_argument("--epochs", type=int, default=2)
  p.add_argument("--step_loops", default="auto",
                 help="comma-separated: auto, scan, host (auto = host for conv nets on CPU)")
  p.add_argument("--input_pipelines", default="device",
                 help="comma-separated: device (dataset on the device), stream (host-fed)")
  p.add_argument("--batch_size", type=int, default=128)
  p.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
  p.add_argument("--layer_impls", default="auto",
                 help="comma-separated max-pool / LRN formulations: auto, xla, custom")
  p.add_argument("--json", default="")
  host.add_flags(p)
  a = p.parse_args(argv)
  setting = host.configure(a.threads, a.pin, a.conv_impl)  # before the first computation
  rows = []
  strategies = a.strategies.split(",")
  for model, step_loop, pipeline, layer_impl in itertools.product(
      a.models.split(","), a.step_loops.split(","), a.input_pipelines.split(","),
      a.layer_impls.split(",")):
    n = a.num_train if model.startswith("mlp") else a.alexnet_num_train
    single = None
    for members, strategy in itertools.product(map(int, a.members.split(",")), strategies):
      if members == 1:  # the baseline: one plain single-member program (no member axis)
        if strategy != strategies[0]:
          continue
        strategy = "sequential"
      row = bench_one(model, members, strategy, n, a.epochs, a.batch_size, step_loop,
                      a.repeats, pipeline, layer_impl, a.conv_impl)
      row.update(setting, xla_flags=os.environ.get("XLA_FLAGS", ""))
      single = row if members == 1 else single
      row["num_train"] = n
      row["vs_sequential_runs"] = (members * single["seconds"] / row["seconds"]
                                   if single else None)
      rows.append(row)
      print(f"{model:14s} {pipeline:6s} {row['step_loop']:5s} {row['layer_impl'] or '-':6s} "
            f"E={members:<2d} {strategy:10s} "
            f"{row['examples_per_second']:9.0f} ex/s {row['steps_per_second']:7.2f} steps/s  "
            f"compile {row['compile_seconds']:5.1f} s  "
            f"vs E single runs {row['vs_sequential_runs'] or 0:5.2f}x  timed "
            f"{row['timed_seconds']:.1f} s  load {row['loadavg_start']} -> "
            f"{row['loadavg_end']}", flush=True)
      write_result(a.json, "engine_throughput", a, rows, partial=True)  # what a part
      # killed by its time limit still reports
  return write_result(a.json, "engine_throughput", a, rows, partial=False)


if __name__ == "__main__":
  main()
