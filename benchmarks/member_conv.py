"""Where the time of E convolutional members goes: every convolution shape of a model, forward
and backward, for E members at once, in each formulation worth trying.

    python benchmarks/member_conv.py --models=inception_small,alexnet_small --members=1,4,8 \
        --json=benchmarks/member_conv_cpu.json
    python benchmarks/member_conv.py --tiny          # seconds, CPU (what the tests run)

The shapes are read from the model's own jaxpr (every `conv_general_dilated` of one training
forward pass at batch --batch, 28x28 inputs), so they are exactly what the engine runs. For
each shape, E members (own inputs, own weights) compute y = conv(x, w) and the two gradients
(dx, dw) for a fixed cotangent, as one program, in these formulations:

- `vmap`: what the engine's vmap strategy emits -- a feature-grouped convolution forward
  (feature_group_count = E) and a batch-grouped one for the weight gradient;
- `map`: `lax.map` over members (one member's dense convolutions in a loop body);
- `unrolled`: the E dense single-member convolutions written one after another in one program;
- `patches`: `lax.conv_general_dilated_patches` then one batched matrix product per member
  axis (einsum), so the member axis is a batch dimension of a GEMM;
- `one`: one member alone (the time E separate runs would take is E times it).

Plus the non-convolution work per member on the same shapes: batch-norm statistics and
normalisation (`bn`, vmapped), forward and backward. Reported: ms per call, GFLOP/s (3 x the
forward multiply-adds x 2: forward, input and weight gradient), and the time against E
single members (> 1: the formulation beats running the members one after another).
"""

from __future__ import annotations

import argparse
import collections
import functools
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import host  # noqa: E402
from record import write_result  # noqa: E402

from rethinking_jax import models  # noqa: E402
from rethinking_jax.models import flops  # noqa: E402

ConvShape = collections.namedtuple("ConvShape", "lhs rhs strides padding count")
DIMS = ("NHWC", "HWIO", "NHWC")
FORMULATIONS = ("vmap", "map", "unrolled", "patches")


def conv_shapes(model_name: str, input_shape=(28, 28, 3), batch: int = 128) -> list[ConvShape]:
  """Every distinct convolution of one training forward pass of `model_name`, with how many
  times it occurs."""
  model = models.build(model_name)
  x = jnp.zeros((batch, *input_shape))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
  mutable = ["batch_stats"] if "batch_stats" in variables else False
  jaxpr = jax.make_jaxpr(lambda v: model.apply(v, x, train=True, mutable=mutable))(variables)
  found = collections.Counter()
  for eqn, _ in flops.equations(jaxpr.jaxpr):
    if eqn.primitive.name == "conv_general_dilated":
      p = eqn.params
      found[(tuple(eqn.invars[0].aval.shape), tuple(eqn.invars[1].aval.shape),
             tuple(p["window_strides"]), tuple(map(tuple, p["padding"])))] += 1
  return [ConvShape(*key, count) for key, count in found.items()]


def _conv(shape: ConvShape):
  return lambda x, w: jax.lax.conv_general_dilated(x, w, shape.strides, shape.padding,
                                                   dimension_numbers=DIMS)


def _patches_conv(shape: ConvShape):
  """y[e] = patches(x[e]) @ w[e] as a GEMM batched over members (the patch features are
  ordered (input channel, kernel row, kernel column))."""
  kh, kw, cin, cout = shape.rhs

  def fn(xs, ws):
    e, b = xs.shape[:2]
    patches = jax.lax.conv_general_dilated_patches(
        xs.reshape(e * b, *xs.shape[2:]), (kh, kw), shape.strides, shape.padding,
        dimension_numbers=DIMS)
    patches = patches.reshape(e, b, *patches.shape[1:])
    wm = jnp.transpose(ws, (0, 3, 1, 2, 4)).reshape(e, cin * kh * kw, cout)
    return jnp.einsum("ebhwk,eko->ebhwo", patches, wm)

  return fn


def members_fn(shape: ConvShape, formulation: str):
  """fn(xs [E,B,H,W,C], ws [E,kh,kw,I,O]) -> ys [E,B,H',W',O] in `formulation`."""
  conv = _conv(shape)
  if formulation == "vmap":
    return jax.vmap(conv)
  if formulation == "map":
    return lambda xs, ws: jax.lax.map(lambda a: conv(*a), (xs, ws))
  if formulation == "unrolled":
    return lambda xs, ws: jnp.stack([conv(xs[e], ws[e]) for e in range(xs.shape[0])])
  if formulation == "patches":
    return _patches_conv(shape)
  raise ValueError(f"formulation: {formulation!r}; allowed: {', '.join(FORMULATIONS)}")


def forward_backward(fn):
  """(xs, ws, dys) -> (ys, dxs, dws): the forward pass and both gradients, one program."""
  def run(xs, ws, dys):
    ys, vjp = jax.vjp(fn, xs, ws)
    return (ys, *vjp(dys))
  return jax.jit(run)


def batchnorm_fn(xs):
  """Per member: batch statistics over (B, H, W) and normalisation, as the models do."""
  def one(x):
    mean = jnp.mean(x, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
    return jax.nn.relu((x - mean) * jax.lax.rsqrt(var + 1e-3))
  return jax.vmap(one)(xs)


def inputs(shape: ConvShape, members: int, dtype, seed: int = 0):
  """Random xs, ws and the cotangent dys for E members of `shape`."""
  kx, kw, ky = jax.random.split(jax.random.key(seed), 3)
  xs = jax.random.normal(kx, (members, *shape.lhs), dtype)
  fan_in = math.prod(shape.rhs[:3])
  ws = (jax.random.normal(kw, (members, *shape.rhs)) / math.sqrt(fan_in)).astype(dtype)
  out = jax.eval_shape(_conv(shape), xs[0], ws[0]).shape
  dys = jax.random.normal(ky, (members, *out), dtype)
  return xs, ws, dys


def time_call(fn, args, repeats: int) -> float:
  """Median ms of fn(*args) over `repeats` calls after a compile-and-warm-up call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def forward_flops(shape: ConvShape) -> float:
  """2 x output elements x (kernel window x input channels)."""
  kh, kw, cin, _ = shape.rhs
  out = jax.eval_shape(_conv(shape), jax.ShapeDtypeStruct(shape.lhs, jnp.float32),
                       jax.ShapeDtypeStruct(shape.rhs, jnp.float32)).shape
  return 2.0 * math.prod(out) * kh * kw * cin


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--models", default="inception_small,alexnet_small")
  p.add_argument("--members", default="1,4,8")
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--formulations", default=",".join(FORMULATIONS))
  p.add_argument("--dtypes", default="float32")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--tiny", action="store_true", help="batch 4, 2 members, 1 repeat (a test)")
  p.add_argument("--json", default="")
  host.add_flags(p)
  a = p.parse_args(argv)
  setting = host.configure(a.threads, a.pin, a.conv_impl)  # before the first computation
  if a.tiny:
    a.batch, a.members, a.repeats = 4, "2", 1
  formulations = [f for f in a.formulations.split(",") if f]
  rows = []
  record = functools.partial(write_result, a.json, "member_conv", a, rows,
                             platform=jax.devices()[0].platform)
  print(f"{'model':16s} {'shape (x | w | stride)':44s} {'E':>2s} {'dtype':8s} "
        f"{'formulation':10s} {'ms':>9s} {'GFLOP/s':>8s} {'vs E x one':>10s}")
  for model in a.models.split(","):
    for shape in conv_shapes(model, batch=a.batch):
      label = f"{'x'.join(map(str, shape.lhs))} | {'x'.join(map(str, shape.rhs))} | " \
              f"{shape.strides[0]} (x{shape.count})"
      for dtype in a.dtypes.split(","):
        one_ms = None
        for e in (int(v) for v in a.members.split(",")):
          xs, ws, dys = inputs(shape, e, jnp.dtype(dtype))
          if one_ms is None or e == 1:
            one_ms = time_call(forward_backward(jax.vmap(_conv(shape))),
                               (xs[:1], ws[:1], dys[:1]), a.repeats)
          flops = 3 * forward_flops(shape) * e
          for form in [*formulations, "bn"]:
            if form == "bn":
              ms = time_call(jax.jit(jax.grad(lambda y: jnp.sum(batchnorm_fn(y)))), (dys,),
                             a.repeats)
            else:
              ms = time_call(forward_backward(members_fn(shape, form)), (xs, ws, dys),
                             a.repeats)
            row = {"model": model, "lhs": shape.lhs, "rhs": shape.rhs,
                   "strides": shape.strides, "count": shape.count, "members": e,
                   "dtype": dtype, "formulation": form, "ms": ms,
                   "gflops": None if form == "bn" else flops / ms / 1e6,
                   "vs_members_alone": None if form == "bn" else e * one_ms / ms,
                   **setting, "loadavg": host.loadavg()}
            rows.append(row)
            record(partial=True)  # what a part killed by its time limit still reports
            gf = "" if row["gflops"] is None else f"{row['gflops']:8.1f}"
            vs = "" if row["vs_members_alone"] is None else f"{row['vs_members_alone']:9.2f}x"
            print(f"{model:16s} {label:44s} {e:2d} {dtype:8s} {form:10s} {ms:9.3f} {gf:>8s} "
                  f"{vs:>10s}", flush=True)
  totals = summarize(rows)
  for (model, e, dtype, form), ms in sorted(totals.items()):
    print(f"total {model:16s} E={e:<2d} {dtype:8s} {form:10s} {ms:9.2f} ms per step "
          "(every convolution of a forward + backward pass, counts included)")
  return record(partial=False)


def summarize(rows) -> dict:
  """{(model, E, dtype, formulation): ms of all the model's convolutions in one step}."""
  totals = collections.defaultdict(float)
  for r in rows:
    totals[(r["model"], r["members"], r["dtype"], r["formulation"])] += r["ms"] * r["count"]
  return dict(totals)


if __name__ == "__main__":
  main()
