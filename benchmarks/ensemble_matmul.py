"""Why a vmapped MLP ensemble is slower than sequential single models on XLA:CPU.

    python benchmarks/ensemble_matmul.py --json=benchmarks/ensemble_matmul.json

Times the first layer of MLP 1x512 (batch 128, 2352 -> 512) for E members, forward and
weight gradient, in the formulations an ensemble can use: E separate programs (what
`sequential` runs), one batched dot_general (what `vmap` produces), a loop inside one program
(what `lax.map` produces), and, for members that share their inputs, one matrix product
against the members' concatenated weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp


def timed(fn, *args, repeats=30):
  fn = jax.jit(fn)
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(repeats):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / repeats * 1e3


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--members", type=int, default=8)
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--inputs", type=int, default=2352)
  p.add_argument("--width", type=int, default=512)
  p.add_argument("--json", default="")
  a = p.parse_args(argv)
  e, b, k, n = a.members, a.batch, a.inputs, a.width
  key = jax.random.key(0)
  x = jax.random.normal(key, (e, b, k))
  w = jax.random.normal(jax.random.fold_in(key, 1), (e, k, n))
  g = jax.random.normal(jax.random.fold_in(key, 2), (e, b, n))
  w_cat = jnp.transpose(w, (1, 0, 2)).reshape(k, e * n)
  g_cat = jnp.transpose(g, (1, 0, 2)).reshape(b, e * n)
  rows = {
      ("forward", "E separate programs (sequential)"): e * timed(lambda x, w: x @ w, x[0], w[0]),
      ("forward", "batched dot_general (vmap)"): timed(jax.vmap(lambda x, w: x @ w), x, w),
      ("forward", "loop in one program (lax.map)"): timed(
          lambda x, w: jax.lax.map(lambda a: a[0] @ a[1], (x, w)), x, w),
      ("forward", "shared inputs: x @ [W_1..W_E]"): timed(lambda x, w: x @ w, x[0], w_cat),
      ("weight grad", "E separate programs (sequential)"): e * timed(
          lambda x, g: x.T @ g, x[0], g[0]),
      ("weight grad", "batched dot_general (vmap)"): timed(jax.vmap(lambda x, g: x.T @ g), x, g),
      ("weight grad", "loop in one program (lax.map)"): timed(
          lambda x, g: jax.lax.map(lambda a: a[0].T @ a[1], (x, g)), x, g),
      ("weight grad", "shared inputs: x.T @ [G_1..G_E]"): timed(lambda x, g: x.T @ g, x[0],
                                                              g_cat),
  }
  flops = 2 * e * b * k * n
  print(f"E={e} members, [{b} x {k}] @ [{k} x {n}] each; {jax.devices()[0].device_kind}")
  print(f"{'pass':12s} {'formulation':36s} {'ms':>8s} {'GFLOP/s':>8s}")
  for (kind, name), ms in rows.items():
    print(f"{kind:12s} {name:36s} {ms:8.2f} {flops / ms / 1e6:8.1f}")
  result = {"benchmark": "ensemble_matmul", "jax": jax.__version__,
            "device": jax.devices()[0].device_kind, "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "args": vars(a),
            "rows": [{"pass": kind, "formulation": name, "ms": ms,
                      "gflops": flops / ms / 1e6} for (kind, name), ms in rows.items()]}
  if a.json:
    with open(a.json, "w") as f:
      json.dump(result, f, indent=2)


if __name__ == "__main__":
  main()
