"""Issue #38 item 2: the small Inception's 1x1 convolutions as matrix products.

A 1x1, stride-1 convolution over NHWC is a dot_general over the channel axis. This times one
SGD step of one member at batch 128 (benchmarks/layer_profile.py's step) with the model's
convolutions as they ship (lax.conv_general_dilated: Eigen's on XLA:CPU) against the same
model whose 1x1 convolutions are dot_generals, in alternated rounds (A B A B ...).

    python benchmarks/one_by_one.py --threads=1 --pin=0 --rounds=6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import host  # noqa: E402


def dot_1x1(lhs, rhs, window_strides, padding, **kwargs):
  """lax.conv_general_dilated's signature; 1x1 stride-1 ungrouped NHWC/HWIO as a dot."""
  from jax import lax

  if (rhs.shape[:2] == (1, 1) and tuple(window_strides) == (1, 1)
      and kwargs.get("feature_group_count", 1) == 1):
    return lax.dot_general(lhs, rhs[0, 0], (((3,), (0,)), ((), ())),
                           precision=kwargs.get("precision"))
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  host.add_flags(p)
  p.add_argument("--rounds", type=int, default=6)
  p.add_argument("--steps", type=int, default=8, help="timed steps per form and round")
  a = p.parse_args(argv)
  print(host.configure(a.threads, a.pin, a.conv_impl), flush=True)
  import layer_profile

  from rethinking_jax.models import inception

  forms = {"conv (as shipped)": layer_profile.jax_step("inception_small", "custom")[0]}
  shipped = inception.conv_general_dilated
  inception.conv_general_dilated = lambda form: dot_1x1
  try:
    forms["1x1 as dot_general"] = layer_profile.jax_step("inception_small", "custom")[0]
  finally:
    inception.conv_general_dilated = shipped
  for run in forms.values():
    run(2)  # warm-up: first allocations
  rates = {name: [] for name in forms}
  for _ in range(a.rounds):
    for name, run in forms.items():
      start = time.perf_counter()
      run(a.steps)
      rates[name].append(a.steps * layer_profile.BATCH / (time.perf_counter() - start))
  for name, r in rates.items():
    print(f"{name}: median {statistics.median(r):.1f} ex/s, rounds "
          + " ".join(f"{x:.1f}" for x in r))
  print("loadavg:", host.loadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


if __name__ == "__main__":
  main()
