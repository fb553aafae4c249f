"""The small Inception's 1x1 convolutions on XLA:CPU: as convolutions (in the `conv_impl`
library) and as matrix products, forward and both gradients.

    python benchmarks/pointwise_conv.py --threads=1 --pin=1 --conv_impl=ynn --json=out.json

Why `conv_impl=auto` is `eigen` on one core too: YNNPACK's 1x1 convolutions ran 2.3-3.4x slower
than Eigen's there (benchmarks/RESULTS.md). Shapes: batch 128, (side, input channels, output
channels) of 1x1 convolutions of the small Inception on 28x28 inputs. Each row: the median of
`--rounds` rounds of >= `--seconds` of calls, after one warm-up call.
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

SHAPES = ((28, 96, 32), (28, 64, 32), (14, 160, 112), (14, 240, 96), (7, 336, 176))


def forms():
  """The forward pass and both gradients, one program each: as a convolution, as a dot."""
  from jax import lax
  from member_conv import forward_backward
  conv = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                               dimension_numbers=("NHWC", "HWIO", "NHWC"))
  dot = lambda x, w: lax.dot_general(x, w[0, 0], (((3,), (0,)), ((), ())))
  return {"conv": forward_backward(conv), "dot": forward_backward(dot)}


def time_ms(fn, args, seconds: float) -> float:
  import jax
  jax.block_until_ready(fn(*args))
  calls, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    jax.block_until_ready(fn(*args))
    calls += 1
  return (time.perf_counter() - start) / calls * 1e3


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--seconds", type=float, default=1.0)
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--json", default="")
  host.add_flags(p)
  a = p.parse_args(argv)
  setting = host.configure(a.threads, a.pin, a.conv_impl)
  import jax
  from record import write_result

  by_form, rows = forms(), []
  for side, cin, cout in SHAPES:
    keys = jax.random.split(jax.random.key(0), 3)
    args = (jax.random.normal(keys[0], (a.batch, side, side, cin)),
            jax.random.normal(keys[1], (1, 1, cin, cout)),
            jax.random.normal(keys[2], (a.batch, side, side, cout)))
    load_start = host.loadavg()
    times = {name: [] for name in by_form}
    for _ in range(a.rounds):  # alternated: conv, dot, conv, dot
      for name, fn in by_form.items():
        times[name].append(time_ms(fn, args, a.seconds))
    row = {"shape": [side, cin, cout], **{f"{k}_ms": statistics.median(v)
                                          for k, v in times.items()},
           "loadavg_start": load_start, "loadavg_end": host.loadavg(), **setting}
    rows.append(row)
    print(f"{side:2d}x{side:<2d} {cin:3d} -> {cout:3d}: conv ({setting['conv_impl']}) "
          f"{row['conv_ms']:7.2f} ms, dot {row['dot_ms']:7.2f} ms (forward + both gradients)",
          flush=True)
  return write_result(a.json, "pointwise_conv", a, rows)


if __name__ == "__main__":
  main()
