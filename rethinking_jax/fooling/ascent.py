"""Gradient-ascent fooling images: from the mean image plus noise, raise the softmax
probability of a target class w.r.t. the input, with l2 decay towards the mean image and
pixels clipped to [0, 1] (Simonyan et al. 2013; Nguyen et al. 2015, §3.3)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

THRESHOLDS = (0.99, 0.999, 0.9999)


@functools.partial(jax.jit, static_argnames=("logits_fn", "steps"))
def _ascend(logits_fn, x0, mean, targets, lr, decay, steps: int):
  def log_prob(x):
    return jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits_fn(x)), targets[:, None], 1))

  def body(x, _):
    x = x + lr * jax.grad(log_prob)(x)
    x = jnp.clip(mean + (1.0 - decay) * (x - mean), 0.0, 1.0)
    probs = jax.nn.softmax(logits_fn(x))
    return x, jnp.take_along_axis(probs, targets[:, None], 1)[:, 0]

  return jax.lax.scan(body, x0, None, length=steps)


def fooling_images(logits_fn, mean_image, num_classes: int, steps: int = 500,
                   lr: float = 0.05, decay: float = 0.01, noise: float = 0.05, seed: int = 0):
  """One image per class; returns (images, confidence per step [steps, K], first iterate at
  which each threshold is reached per class {threshold: [K] (None: never)})."""
  mean = jnp.asarray(mean_image)
  targets = jnp.arange(num_classes)
  x0 = jnp.clip(mean + noise * jax.random.normal(jax.random.key(seed),
                                                 (num_classes, *mean.shape)), 0, 1)
  images, confidence = _ascend(logits_fn, x0, mean, targets, lr, decay, steps)
  confidence = np.asarray(confidence)
  first = {}
  for t in THRESHOLDS:
    reached = confidence >= t
    first[t] = [int(np.argmax(reached[:, k])) + 1 if reached[:, k].any() else None
                for k in range(num_classes)]
  return np.asarray(images), confidence, first
