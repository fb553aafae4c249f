"""The gate prototype's convolution against lax.conv_general_dilated, forward and both
gradients, under vmap over 3 members, within 2 * gamma_K * (the sum of the terms' magnitudes)
(the bound of tests/test_member_conv.py); prints one line per case and exits 1 on a miss.

    python benchmarks/onednn_gate/check.py
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onednn  # noqa: E402

U = 2.0 ** -24
CASES = [((1, 1), "SAME", (3, 2)), ((2, 2), "SAME", (3, 2)), ((2, 1), "VALID", (3, 2)),
         ((1, 1), [(1, 2), (0, 1)], (3, 2)), ((1, 1), "SAME", (1, 1)), ((2, 2), "SAME", (3, 3))]


def conv(impl, strides, padding):
  return lambda x, w: impl(x, w, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def forward_and_grads(f, x, w, g):
  y, vjp = jax.vjp(f, x, w)
  return (y, *vjp(g))


def main() -> int:
  print("oneDNN", onednn.load())
  misses = 0
  for strides, padding, (kh, kw) in CASES:
    e, n, h, w_, cin, cout = 3, 4, 9, 8, 5, 7
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (e, n, h, w_, cin))
    w = jax.random.normal(keys[1], (e, kh, kw, cin, cout))
    reference = conv(jax.lax.conv_general_dilated, strides, padding)
    y_shape = jax.eval_shape(reference, x[0], w[0]).shape
    g = jax.random.normal(keys[2], (e, *y_shape))
    mine = conv(onednn.conv_general_dilated, strides, padding)
    got = jax.jit(jax.vmap(lambda *a, f=mine: forward_and_grads(f, *a)))(x, w, g)
    worst = 0.0
    for m in range(e):
      want = forward_and_grads(reference, x[m], w[m], g[m])
      size = forward_and_grads(reference, jnp.abs(x[m]), jnp.abs(w[m]), jnp.abs(g[m]))
      ks = (kh * kw * cin, kh * kw * cout, n * y_shape[1] * y_shape[2])
      for k, a, b, s in zip(ks, (got[0][m], got[1][m], got[2][m]), want, size, strict=True):
        bound = 2 * k * U / (1 - k * U) * np.asarray(s)
        worst = max(worst, float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / bound)))
    misses += worst > 1
    print(f"strides {strides} padding {padding} kernel {kh}x{kw}: worst error / bound "
          f"{worst:.3f} {'ok' if worst <= 1 else 'MISS'}")
  return 1 if misses else 0


if __name__ == "__main__":
  sys.exit(main())
