"""SGD on an under-determined linear least-squares problem finds the minimum-norm solution.

Started at w0, every SGD update is a multiple of a data point, so w stays in w0 + span(X):
it converges to the interpolant closest to w0, X^+ y + (I - X^+ X) w0 -- the pseudo-inverse
(minimum-norm) solution exactly when w0 = 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def sgd_linear(x: np.ndarray, y: np.ndarray, w0: np.ndarray, lr: float, epochs: int,
               seed: int = 0, record_every: int = 1) -> tuple[np.ndarray, list[int], np.ndarray]:
  """Plain SGD, one example per step, on 0.5 * (x_i . w - y_i)^2 (float64).

  Returns the final w, the epochs recorded and the iterates at those epochs."""
  with jax.enable_x64(True):
    xj, yj = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)
    n = len(y)

    @jax.jit
    def epoch(w, key):
      def step(w, i):
        return w - lr * (xj[i] @ w - yj[i]) * xj[i], None
      return jax.lax.scan(step, w, jax.random.permutation(key, n))[0]

    w = jnp.asarray(w0, jnp.float64)
    key = jax.random.key(seed)
    recorded, iterates = [], []
    for e in range(1, epochs + 1):
      w = epoch(w, jax.random.fold_in(key, e))
      if e % record_every == 0 or e == epochs:
        recorded.append(e)
        iterates.append(np.asarray(w))
    return np.asarray(w), recorded, np.stack(iterates)


def experiment(n: int = 50, d: int = 200, epochs: int = 300, lr: float = 0.002,
               seed: int = 0, start_scale: float = 1.0) -> dict:
  """From zero and from a random start: distance to the pseudo-inverse solution over time."""
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, d))
  y = rng.standard_normal(n)
  w_pinv = np.linalg.pinv(x) @ y
  w_start = start_scale * rng.standard_normal(d)
  w_limit = w_pinv + w_start - np.linalg.pinv(x) @ (x @ w_start)
  out = {"n": n, "d": d, "epochs": epochs, "lr": lr, "pinv_norm": float(np.linalg.norm(w_pinv))}
  for name, w0, target in (("from_zero", np.zeros(d), w_pinv),
                           ("from_random", w_start, w_limit)):
    w, recorded, iterates = sgd_linear(x, y, w0, lr, epochs, seed)
    out[name] = {
        "epochs": recorded,
        "relative_distance_to_pinv": [float(np.linalg.norm(v - w_pinv) / np.linalg.norm(w_pinv))
                                      for v in iterates],
        "relative_distance_to_limit": [float(np.linalg.norm(v - target) / np.linalg.norm(target))
                                       for v in iterates],
        "train_residual": float(np.linalg.norm(x @ w - y)), "norm": float(np.linalg.norm(w))}
  return out
