"""Minimum-norm interpolation with kernels (docs/PROTOCOL.md §6): solve K A = Y, unregularized.

SGD on a linear model started at zero stays in the span of the data, so if it interpolates
it finds the minimum-norm solution w = X^T alpha with X X^T alpha = y. With a kernel K the same
holds for K alpha = y. Gram matrices are computed in blocks so memory stays bounded; solves
are in float64 where memory allows (float32 with a jitter otherwise).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from rethinking_jax.base.errors import unknown_name

KERNELS = ("gaussian", "linear")


def median_pairwise_distance(x: np.ndarray, sample: int = 2000, seed: int = 0) -> float:
  """The median distance between distinct points of (a sample of) x: the default bandwidth."""
  rng = np.random.default_rng(seed)
  idx = rng.choice(len(x), size=min(sample, len(x)), replace=False)
  s = np.asarray(x[idx], np.float64)
  sq = np.sum(s**2, 1)
  d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * s @ s.T, 0.0)
  return float(np.sqrt(np.median(d2[np.triu_indices(len(s), 1)])))


@functools.partial(jax.jit, static_argnames=("kernel",))
def _block(x, y, kernel: str, bandwidth):
  if kernel == "linear":
    return x @ y.T
  d2 = jnp.maximum(jnp.sum(x**2, 1)[:, None] + jnp.sum(y**2, 1)[None, :] - 2 * x @ y.T, 0.0)
  return jnp.exp(-d2 / (2 * bandwidth**2))


def gram(x: np.ndarray, y: np.ndarray, kernel: str, bandwidth: float = 1.0,
         block: int = 2048, dtype=np.float64) -> np.ndarray:
  """K[i, j] = k(x_i, y_j), computed block by block (peak extra memory ~ block^2 plus two
  blocks of rows: the inputs are converted to `dtype` a block at a time, so float32 features
  of 20,000 x 32,000 do not get a 5 GB float64 copy)."""
  if kernel not in KERNELS:
    raise unknown_name("kernel", kernel, KERNELS)
  out = np.empty((len(x), len(y)), dtype)
  with jax.enable_x64(dtype == np.float64):
    for i in range(0, len(x), block):
      xb = np.asarray(x[i:i + block], dtype)
      for j in range(0, len(y), block):
        out[i:i + block, j:j + block] = np.asarray(
            _block(xb, np.asarray(y[j:j + block], dtype), kernel, dtype(bandwidth)))
  return out


def blocked_cholesky(k: np.ndarray, block: int = 2048) -> np.ndarray:
  """The lower Cholesky factor of `k`, in k's own memory (its upper triangle is left as it
  was), by blocks: LAPACK factors only block x block diagonal tiles and every other call is a
  matrix product or a triangular solve of at most n x block. One LAPACK call on the whole
  float32 Gram matrix segfaulted here at n = 40,000 and 50,000 (OpenBLAS's potrf on matrices
  of several GB); tiles stay far below that. Raises LinAlgError when k is not positive
  definite."""
  n = len(k)
  for j in range(0, n, block):
    e = min(j + block, n)
    tile = scipy.linalg.cholesky(k[j:e, j:e], lower=True, check_finite=False)
    k[j:e, j:e] = tile
    if e == n:
      break
    # the panel below the tile: P <- P L_jj^-T
    k[e:, j:e] = scipy.linalg.solve_triangular(tile, k[e:, j:e].T, lower=True,
                                               check_finite=False).T
    panel = k[e:, j:e]
    for c in range(e, n, block):  # the trailing lower triangle, one column block at a time
      ce = min(c + block, n)
      k[c:, c:ce] -= panel[c - e:] @ panel[c - e:ce - e].T
  return k


def lower_solve(lower: np.ndarray, y: np.ndarray, block: int = 2048,
                transpose: bool = False) -> np.ndarray:
  """L x = y (or L^T x = y), by blocks of the lower triangle of `lower`."""
  n = len(lower)
  x = np.array(y, dtype=np.result_type(lower, y), copy=True)
  starts = list(range(0, n, block))
  if not transpose:
    for j in starts:
      e = min(j + block, n)
      if j:
        x[j:e] -= lower[j:e, :j] @ x[:j]
      x[j:e] = scipy.linalg.solve_triangular(lower[j:e, j:e], x[j:e], lower=True,
                                             check_finite=False)
  else:
    for j in reversed(starts):
      e = min(j + block, n)
      if e < n:
        x[j:e] -= lower[e:, j:e].T @ x[e:]
      x[j:e] = scipy.linalg.solve_triangular(lower[j:e, j:e], x[j:e], lower=True, trans=1,
                                             check_finite=False)
  return x


def lower_times(lower: np.ndarray, y: np.ndarray, block: int = 2048,
                transpose: bool = False) -> np.ndarray:
  """L y (or L^T y) from the lower triangle of `lower`, by blocks."""
  n = len(lower)
  out = np.zeros((n, y.shape[1]), np.result_type(lower, y))
  for i in range(0, n, block):
    e = min(i + block, n)
    if not transpose:  # rows i:e of L: the blocks left of the diagonal, then the tile
      out[i:e] = lower[i:e, :i] @ y[:i] + np.tril(lower[i:e, i:e]) @ y[i:e]
    else:  # rows i:e of L^T: the tile, then the blocks below it
      out[i:e] = np.tril(lower[i:e, i:e]).T @ y[i:e] + lower[e:, i:e].T @ y[e:]
  return out


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
  return np.eye(num_classes, dtype=np.float64)[labels]


def fit_and_evaluate(x_train, y_train, x_test, y_test, num_classes: int, kernel: str,
                     bandwidth: float | None = None, l2: float = 0.0, block: int = 2048,
                     dtype=np.float64) -> dict:
  """Min-norm (or l2-regularized) kernel interpolation with one-hot targets; test error.

  Both precisions factor K in its own memory by blocks (`_fit_in_place`): one n x n array
  (for n = 20,000 in float64: 3.2 GB; n = 50,000 in float32: 10 GB), and no LAPACK call on
  the whole matrix (scipy's cho_factor segfaulted here on the 20,000^2 float64 one)."""
  if kernel == "gaussian" and bandwidth is None:
    bandwidth = median_pairwise_distance(x_train)
  make_k = lambda: gram(x_train, x_train, kernel, bandwidth or 1.0, block, dtype)
  result = fit_and_evaluate_grams(make_k, lambda: gram(x_test, x_train, kernel,
                                                       bandwidth or 1.0, block, dtype),
                                  y_train, y_test, num_classes, l2, block, dtype)
  return {"kernel": kernel, "bandwidth": bandwidth, **result}


def fit_and_evaluate_grams(make_k, make_k_test, y_train, y_test, num_classes: int,
                           l2: float = 0.0, block: int = 2048, dtype=np.float64) -> dict:
  """fit_and_evaluate from the Gram matrices: make_k() -> a fresh K [n, n] (only its lower
  triangle is read; the factorization overwrites it), make_k_test() -> K(test, train)."""
  targets = one_hot(y_train, num_classes)
  alpha, train_scores, norms, jitter = _fit_in_place(make_k, targets, l2, block, dtype)
  test_scores = make_k_test() @ alpha
  return {"l2": l2, "jitter": jitter, "dtype": np.dtype(dtype).name,
          "train_error": float(np.mean(np.argmax(train_scores, 1) != y_train)),
          "test_error": float(np.mean(np.argmax(test_scores, 1) != y_test)),
          "norm_per_class": [float(v) for v in norms], "norm_mean": float(np.mean(norms)),
          "num_train": int(len(y_train)), "num_test": int(len(y_test))}


def jitters(dtype, scale: float, tries: int = 4) -> list[float]:
  """The diagonal jitters tried in turn: float64 first tries none (exact min-norm); float32
  starts at 1e-6 of K's mean diagonal. Each next one is tenfold, while rounding makes the
  factorization fail."""
  grown = [1e-6 * scale * 10**i for i in range(tries)]
  return ([0.0] + grown[:-1]) if np.dtype(dtype) == np.float64 else grown


def _fit_in_place(make_k, targets, l2, block, dtype=np.float32):
  """K + (l2 + jitter) I = L L^T factored in K's own memory, the jitter taken from `jitters`.
  Train scores K alpha = L (L^T alpha) - (l2 + jitter) alpha and the norms
  alpha^T K alpha = |L^T alpha|^2 - (l2 + jitter)|alpha|^2 come from the factor."""
  k = make_k()
  diagonal = np.diag(k).copy()
  for jitter in jitters(dtype, float(np.mean(diagonal))):
    if k is None:
      k = make_k()
    k[np.diag_indices_from(k)] = diagonal + (l2 + jitter)
    try:
      lower = blocked_cholesky(k, block)
      break
    except np.linalg.LinAlgError:
      k = None  # the failed factorization overwrote part of K's lower triangle
  else:
    raise np.linalg.LinAlgError(f"K is not positive definite in {np.dtype(dtype).name} even "
                                f"with a jitter of {jitter:g}")
  targets = np.asarray(targets, dtype)
  alpha = lower_solve(lower, lower_solve(lower, targets, block), block, transpose=True)
  lt_alpha = lower_times(lower, alpha, block, transpose=True)          # L^T alpha
  train_scores = lower_times(lower, lt_alpha, block) - (l2 + jitter) * alpha
  sq = (np.sum(lt_alpha.astype(np.float64) ** 2, 0)
        - (l2 + jitter) * np.sum(alpha.astype(np.float64) ** 2, 0))
  return alpha, train_scores, np.sqrt(np.maximum(sq, 0.0)), jitter
