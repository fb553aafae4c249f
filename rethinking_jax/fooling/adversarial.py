"""Minimal adversarial noise (Szegedy et al. 2013): the smallest perturbation that flips a
prediction, by projected gradient descent inside an epsilon ball and bisection on epsilon.

Targeted: reach a given class. Untargeted: leave the predicted class. Norms: l2 or linf.
Perturbed images stay in the valid range [0, 1].
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _project(delta, eps, norm):
  if norm == "linf":
    return jnp.clip(delta, -eps[:, None, None, None], eps[:, None, None, None])
  n = jnp.sqrt(jnp.sum(delta**2, axis=(1, 2, 3), keepdims=True)) + 1e-12
  return delta * jnp.minimum(1.0, eps[:, None, None, None] / n)


def _norm(delta, norm):
  flat = delta.reshape(delta.shape[0], -1)
  return jnp.max(jnp.abs(flat), 1) if norm == "linf" else jnp.sqrt(jnp.sum(flat**2, 1))


def _margin(logits, source, target):
  """> 0 once the attack succeeded: untargeted (target < 0) leaves `source`, targeted reaches
  `target`."""
  k = logits.shape[-1]
  src = jnp.take_along_axis(logits, source[:, None], 1)[:, 0]
  others = jnp.where(jax.nn.one_hot(source, k) > 0, -jnp.inf, logits)
  tgt = jnp.take_along_axis(logits, jnp.maximum(target, 0)[:, None], 1)[:, 0]
  best_other = jnp.max(jnp.where(jax.nn.one_hot(jnp.maximum(target, 0), k) > 0, -jnp.inf,
                                 logits), -1)
  return jnp.where(target < 0, jnp.max(others, -1) - src, tgt - best_other)


@functools.partial(jax.jit, static_argnames=("logits_fn", "norm", "steps"))
def pgd(logits_fn, x, source, target, eps, norm: str = "l2", steps: int = 40):
  """Best perturbation within ||delta|| <= eps (per image) found by `steps` PGD steps."""
  step_size = 2.5 * eps / steps

  def loss(delta):
    return -jnp.sum(_margin(logits_fn(jnp.clip(x + delta, 0, 1)), source, target))

  def body(delta, _):
    g = jax.grad(loss)(delta)
    if norm == "linf":
      direction = jnp.sign(g)
    else:
      direction = g / (jnp.sqrt(jnp.sum(g**2, axis=(1, 2, 3), keepdims=True)) + 1e-12)
    delta = _project(delta - step_size[:, None, None, None] * direction, eps, norm)
    delta = jnp.clip(x + delta, 0, 1) - x
    return delta, None

  delta, _ = jax.lax.scan(body, jnp.zeros_like(x), None, length=steps)
  return delta, _margin(logits_fn(x + delta), source, target) > 0


def minimal_perturbation(logits_fn, x, source, target=None, norm: str = "l2",
                         bisections: int = 12, steps: int = 40, max_eps: float | None = None):
  """Per image, the smallest eps (bisection) at which PGD flips the prediction.

  Returns (delta [B,...], success [B], norms [B]); failures get norm inf.
  """
  x = jnp.asarray(x)
  source = jnp.asarray(source, jnp.int32)
  target = jnp.full_like(source, -1) if target is None else jnp.asarray(target, jnp.int32)
  dim = int(np.prod(x.shape[1:]))
  hi = jnp.full((x.shape[0],), max_eps or (1.0 if norm == "linf" else float(np.sqrt(dim))))
  lo = jnp.zeros_like(hi)
  best = jnp.zeros_like(x)
  found = jnp.zeros(x.shape[0], bool)
  delta, ok = pgd(logits_fn, x, source, target, hi, norm, steps)
  best, found = jnp.where(ok[:, None, None, None], delta, best), ok
  for _ in range(bisections):
    mid = (lo + hi) / 2
    delta, ok = pgd(logits_fn, x, source, target, mid, norm, steps)
    best = jnp.where(ok[:, None, None, None], delta, best)
    found = found | ok
    hi, lo = jnp.where(ok, mid, hi), jnp.where(ok, lo, mid)
  norms = jnp.where(found, _norm(best, norm), jnp.inf)
  return np.asarray(best), np.asarray(found), np.asarray(norms)


def random_direction_norms(logits_fn, x, source, seed: int = 0, norm: str = "l2",
                           bisections: int = 20):
  """The smallest scale along a random direction that flips each prediction (inf if none
  within the valid range): the baseline an adversarial perturbation should beat."""
  x = jnp.asarray(x)
  source = jnp.asarray(source, jnp.int32)
  direction = jax.random.normal(jax.random.key(seed), x.shape)
  if norm == "linf":
    direction = jnp.sign(direction)
  direction = direction / _norm(direction, norm)[:, None, None, None]
  flips = lambda s: jnp.argmax(logits_fn(jnp.clip(x + s[:, None, None, None] * direction, 0, 1)),
                               -1) != source
  dim = int(np.prod(x.shape[1:]))
  hi = jnp.full((x.shape[0],), 1.0 if norm == "linf" else float(np.sqrt(dim)))
  ok_hi = flips(hi)
  lo = jnp.zeros_like(hi)
  for _ in range(bisections):
    mid = (lo + hi) / 2
    ok = flips(mid)
    hi, lo = jnp.where(ok, mid, hi), jnp.where(ok, lo, mid)
  return np.asarray(jnp.where(ok_hi, hi, jnp.inf))
