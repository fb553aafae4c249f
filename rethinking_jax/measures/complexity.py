"""Complexity measures of a trained network, the candidates the follow-up literature set against
generalization (Neyshabur et al. 2017, "Exploring generalization in deep learning"; Bartlett
et al. 2017, "Spectrally-normalized margin bounds"; Jiang et al. 2020, "Fantastic
generalization measures and where to find them").

Pure functions of a parameter tree (Flax: a layer's weight matrix is its `kernel`, [in, out]
for Dense, [h, w, in, out] for Conv) and, for margins and sharpness, of a model's outputs
and loss on training examples.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np


def kernels(params) -> list[np.ndarray]:
  """The weight tensors (`kernel` leaves) in the tree's order (layer order for Flax)."""
  leaves = jax.tree_util.tree_leaves_with_path(params)
  return [np.asarray(x, np.float64) for path, x in leaves
          if getattr(path[-1], "key", None) == "kernel"]


def parameter_l2(params) -> float:
  """||w||_2 over every parameter (weights, biases, batch-norm offsets)."""
  return float(np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2)
                           for x in jax.tree.leaves(params))))


def frobenius_norms(params) -> list[float]:
  """||W_i||_F of every weight tensor."""
  return [float(np.linalg.norm(w)) for w in kernels(params)]


def as_matrix(w: np.ndarray) -> np.ndarray:
  """A weight tensor as the matrix [fan-in, fan-out] it applies at one position: a Conv
  kernel [h, w, in, out] -> [h*w*in, out]. For a convolution this is the per-patch map, whose
  spectral norm is a proxy for (not) the operator norm of the whole convolution."""
  return w.reshape(-1, w.shape[-1])


def spectral_norms(params) -> list[float]:
  """The largest singular value of every weight matrix (as_matrix for convolutions)."""
  return [float(np.linalg.svd(as_matrix(w), compute_uv=False)[0]) for w in kernels(params)]


def product(values) -> float:
  return float(np.prod(np.asarray(values, np.float64)))


def spectral_complexity(params) -> float:
  """Bartlett et al.'s R = prod_i ||W_i||_2 * (sum_i (||W_i^T||_{2,1} / ||W_i||_2)^(2/3))^(3/2),
  with reference matrices 0; ||A||_{2,1} is the sum of the l2 norms of A's columns, taken
  over the transposed (out x in) matrices, as in the paper."""
  total = 0.0
  spectral = spectral_norms(params)
  for w, s in zip(kernels(params), spectral, strict=True):
    l21 = float(np.sum(np.linalg.norm(as_matrix(w), axis=1)))  # rows of W = columns of W^T
    total += (l21 / s) ** (2.0 / 3.0)
  return product(spectral) * total ** 1.5


def path_l2(dense_kernels: list[np.ndarray]) -> float:
  """The path-l2 norm of a ReLU MLP (Neyshabur et al. 2015): sqrt of the sum over every
  input-output path of the product of its squared weights = sqrt(1^T |W_1|^2 ... |W_L|^2 1).
  Defined for chains of dense layers (biases are not on input paths)."""
  v = np.ones(dense_kernels[0].shape[0])
  for w in dense_kernels:
    v = v @ (w ** 2)
  return float(np.sqrt(np.sum(v)))


def distance(params, reference) -> float:
  """||w - w_0||_2 over every parameter (distance from initialization)."""
  return float(np.sqrt(sum(np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
                           for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(reference),
                                           strict=True))))


def margins(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """f(x)[y] - max_{j != y} f(x)[j] per example: positive where classified right."""
  logits = np.asarray(logits, np.float64)
  true = logits[np.arange(len(labels)), labels]
  other = logits.copy()
  other[np.arange(len(labels)), labels] = -np.inf
  return true - other.max(axis=1)


def hessian_max_eigenvalue(loss: Callable, params, iterations: int = 20, seed: int = 0
                           ) -> float:
  """The largest eigenvalue of the Hessian of `loss(params)` (sharpness), by power iteration
  on Hessian-vector products (forward-over-reverse: jvp of grad), never forming the Hessian.
  Returns the Rayleigh quotient v^T H v of the last iterate (the eigenvalue of largest
  magnitude; at a minimum of the training loss the largest positive one)."""
  flat, unravel = jax.flatten_util.ravel_pytree(params)
  grad = jax.grad(lambda f: loss(unravel(f)))
  hvp = jax.jit(lambda f, v: jax.jvp(grad, (f,), (v,))[1])
  v = jax.random.normal(jax.random.key(seed), flat.shape, flat.dtype)
  v = v / jnp.linalg.norm(v)
  eigenvalue = 0.0
  for _ in range(iterations):
    hv = hvp(flat, v)
    eigenvalue = float(jnp.vdot(v, hv))
    v = hv / jnp.maximum(jnp.linalg.norm(hv), 1e-30)
  return eigenvalue


def perturbed_loss_increase(loss: Callable, params, relative: float = 0.01,
                            samples: int = 8, seed: int = 0) -> float:
  """Mean of loss(w + u) - loss(w) over random directions u with ||u_l|| = relative * ||w_l||
  for every parameter tensor l (a random-direction sharpness: Jiang et al.'s
  magnitude-aware perturbation, at a fixed relative size)."""
  base = float(loss(params))
  leaves, tree = jax.tree.flatten(params)
  key = jax.random.key(seed)
  increases = []
  for s in range(samples):
    keys = jax.random.split(jax.random.fold_in(key, s), len(leaves))
    moved = []
    for k, w in zip(keys, leaves, strict=True):
      u = jax.random.normal(k, w.shape, jnp.float32)
      u = u * (relative * jnp.linalg.norm(w) / jnp.maximum(jnp.linalg.norm(u), 1e-30))
      moved.append(w + u.astype(w.dtype))
    increases.append(float(loss(jax.tree.unflatten(tree, moved))) - base)
  return float(np.mean(increases))
