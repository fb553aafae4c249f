"""Theorem 1: a depth-2 ReLU network with 2n + d weights fits any labels on n points in R^d.

c(x) = sum_j w_j * relu(<a, x> - b_j). Pick a with pairwise-distinct projections x_i = <a, z_i>
(a Gaussian a does so almost surely), sort them, interleave thresholds b_1 < x_1 < b_2 < ...
< b_n < x_n; then A[i, j] = relu(x_i - b_j) is lower triangular with a positive diagonal and
A w = y is solved by forward substitution. Computed in float64.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rethinking_jax.base.errors import UserError

# Projections closer than this (relative to their spread) make the triangular system
# numerically singular: a clear error rather than a silently wrong network.
MIN_RELATIVE_GAP = 1e-12


@dataclasses.dataclass(frozen=True)
class Depth2Network:
  a: np.ndarray        # [d] projection
  b: np.ndarray        # [n] thresholds
  w: np.ndarray        # [n] output weights
  min_gap: float       # smallest gap between sorted projections (the conditioning)

  @property
  def num_params(self) -> int:
    return self.a.size + self.b.size + self.w.size


def thresholds(sorted_x: np.ndarray) -> np.ndarray:
  """b_1 < x_1 < b_2 < x_2 < ... : b_1 half a gap below x_1, the rest at the midpoints."""
  gaps = np.diff(sorted_x)
  first = sorted_x[0] - (gaps.min() / 2 if gaps.size else 1.0)
  return np.concatenate([[first], (sorted_x[:-1] + sorted_x[1:]) / 2])


def solve_weights(sorted_x, b, y):
  """Forward substitution for A w = y, A[i, j] = relu(x_i - b_j) (lower triangular).

  The weights grow like (label gap) / (smallest projection gap), and evaluating the network
  sums n terms of that size: the float64 fitting error grows with 1 / min_gap.
  """
  with jax.enable_x64(True):
    a_matrix = jnp.maximum(jnp.asarray(sorted_x)[:, None] - jnp.asarray(b)[None, :], 0.0)
    w = jax.scipy.linalg.solve_triangular(a_matrix, jnp.asarray(y, jnp.float64), lower=True)
    return np.asarray(w)


def _relative_min_gap(x: np.ndarray) -> float:
  gaps = np.diff(np.sort(x))
  return float(gaps.min() / max(np.ptp(x), 1e-300)) if gaps.size else np.inf


def construct(z, y, seed: int = 0, candidates: int = 8) -> Depth2Network:
  """The depth-2 network of Theorem 1 for points z [n, d] and targets y [n].

  Of `candidates` random Gaussian projections, the one whose sorted projections are best
  separated (largest smallest gap relative to their spread) is used: any of them works in
  exact arithmetic, the best conditioned one loses the fewest digits in float64.
  """
  z = np.asarray(z, np.float64).reshape(len(z), -1)
  y = np.asarray(y, np.float64)
  rng = np.random.default_rng(seed)
  a = max((rng.standard_normal(z.shape[1]) for _ in range(candidates)),
          key=lambda v: _relative_min_gap(z @ v))
  x = z @ a
  order = np.argsort(x, kind="stable")
  sorted_x = x[order]
  gaps = np.diff(sorted_x)
  spread = max(float(np.ptp(sorted_x)), 1e-300)
  if gaps.size and gaps.min() <= MIN_RELATIVE_GAP * spread:
    i = int(np.argmin(gaps))
    raise UserError(f"points {order[i]} and {order[i + 1]} have equal projections "
                    f"(gap {gaps.min():.3g}): duplicate points cannot take different labels; "
                    "remove duplicates or use another seed")
  b = thresholds(sorted_x)
  w_sorted = solve_weights(sorted_x, b, y[order])
  return Depth2Network(a, b, w_sorted, float(gaps.min()) if gaps.size else float("inf"))


def evaluate(net: Depth2Network, z) -> jax.Array:
  """c(z) = sum_j w_j relu(<a, z> - b_j), in float64."""
  with jax.enable_x64(True):
    z = jnp.asarray(np.asarray(z, np.float64).reshape(len(z), -1))
    hidden = jnp.maximum((z @ jnp.asarray(net.a))[:, None] - jnp.asarray(net.b)[None, :], 0.0)
    return np.asarray(hidden @ jnp.asarray(net.w))


class Depth2ReLU(nn.Module):
  """The construction as a Flax model: Dense(1, no bias) -> minus thresholds -> ReLU -> w."""

  width: int

  @nn.compact
  def __call__(self, x):
    x = x.reshape(x.shape[0], -1)
    projection = nn.Dense(1, use_bias=False, name="projection")(x)
    thresholds_ = self.param("thresholds", nn.initializers.zeros, (self.width,))
    hidden = nn.relu(projection - thresholds_)
    return nn.Dense(1, use_bias=False, name="output")(hidden)[:, 0]


def flax_params(net: Depth2Network) -> dict:
  return {"params": {"projection": {"kernel": net.a[:, None]}, "thresholds": net.b,
                     "output": {"kernel": net.w[:, None]}}}


def construct_deep(z, y, depth: int, seed: int = 0):
  """The depth-k corollary: k hidden ReLU layers of width ceil(n/(k-1)) + 3, O(n + d) weights.

  Hidden layer 1 computes only u = relu(<a, x> - b_0), with b_0 below every projection, so u
  carries the projection exactly on the data. Each later layer carries u, the running output
  s as relu(s) and relu(-s), and evaluates its own group of threshold units relu(u - (b_j -
  b_0)) = relu(<a, x> - b_j). Returns the layers as (W, bias) pairs (ReLU after all but the
  last) and their number of nonzero weights and biases.
  """
  if depth < 2:
    raise UserError(f"theorem1_depths: {depth} hidden layers; the corollary needs >= 2")
  net = construct(z, y, seed)
  b0 = net.b[0] - 1.0
  w_in = np.zeros((net.a.size, 3))
  w_in[:, 0] = net.a
  layers = [(w_in, np.array([-b0, 0.0, 0.0]))]
  prev_w = np.zeros(0)  # output weights of the previous layer's threshold units
  for g in np.array_split(np.arange(net.b.size), depth - 1):
    w_l = np.zeros((3 + prev_w.size, 3 + g.size))
    w_l[0, 0] = 1.0                           # carry u
    w_l[0, 3:] = 1.0                          # u - (b_j - b0) = <a, x> - b_j
    contribution = np.concatenate([[0.0, 1.0, -1.0], prev_w])
    w_l[:, 1], w_l[:, 2] = contribution, -contribution   # s += previous group, split by sign
    layers.append((w_l, np.concatenate([[0.0, 0.0, 0.0], -(net.b[g] - b0)])))
    prev_w = net.w[g]
  layers.append((np.concatenate([[0.0, 1.0, -1.0], prev_w])[:, None], np.zeros(1)))
  nonzero = sum(int(np.count_nonzero(w)) + int(np.count_nonzero(b_)) for w, b_ in layers)
  return layers, nonzero


def evaluate_deep(layers, z) -> np.ndarray:
  with jax.enable_x64(True):
    h = jnp.asarray(np.asarray(z, np.float64).reshape(len(z), -1))
    for i, (w, b) in enumerate(layers):
      h = h @ jnp.asarray(w) + jnp.asarray(b)
      if i < len(layers) - 1:
        h = jnp.maximum(h, 0.0)
    return np.asarray(h[:, 0])
