"""The paper's small AlexNet (1,387,786 params on 28x28x3), with TF-semantics LRN."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

LRN_DEPTH_RADIUS = 4
LRN_BIAS = 1.0
LRN_ALPHA = 0.001 / 9.0
LRN_BETA = 0.75


def local_response_normalization(x, depth_radius: int = LRN_DEPTH_RADIUS, bias: float = LRN_BIAS,
                                 alpha: float = LRN_ALPHA, beta: float = LRN_BETA):
  """tf.nn.local_response_normalization over the channel axis of NHWC inputs.

  sqr_sum[..., d] = sum(x[..., d - r : d + r + 1] ** 2) (zero beyond the edges);
  out = x / (bias + alpha * sqr_sum) ** beta. TF does not divide alpha by the window size.
  """
  window = 2 * depth_radius + 1
  pad = ((0, 0),) * (x.ndim - 1) + ((depth_radius, depth_radius),)
  sqr_sum = jax.lax.reduce_window(x * x, 0.0, jax.lax.add,
                                  (1,) * (x.ndim - 1) + (window,), (1,) * x.ndim, pad)
  return x / (bias + alpha * sqr_sum) ** beta


class AlexNetSmall(nn.Module):
  """2 x [conv 5x5 64 + ReLU -> max-pool 3x3/2 SAME -> LRN] -> Dense 384 -> 192 -> classes."""

  num_classes: int = 10
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    for _ in range(2):
      x = nn.relu(nn.Conv(64, (5, 5), padding="SAME", dtype=self.dtype)(x))
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
      x = local_response_normalization(x)
    x = x.reshape(x.shape[0], -1)
    for width in (384, 192):
      x = nn.relu(nn.Dense(width, dtype=self.dtype)(x))
      if self.dropout_rate:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype)(x)
