"""The paper's small AlexNet (1,387,786 params on 28x28x3), with TF-semantics LRN."""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from rethinking_jax.models.layers import local_response_normalization, max_pool
from rethinking_jax.models.member_conv import conv_general_dilated


class AlexNetSmall(nn.Module):
  """2 x [conv 5x5 64 + ReLU -> max-pool 3x3/2 SAME -> LRN] -> Dense 384 -> 192 -> classes."""

  num_classes: int = 10
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32
  layer_impl: str = "xla"       # max-pool and LRN formulation (models/layers.py)
  conv: str = "xla"             # convolution formulation under vmap (models/member_conv.py)

  @nn.compact
  def __call__(self, x, train: bool = False):
    for _ in range(2):
      x = nn.relu(nn.Conv(64, (5, 5), padding="SAME", dtype=self.dtype,
                            conv_general_dilated=conv_general_dilated(self.conv))(x))
      x = max_pool(x, 3, 2, "SAME", self.layer_impl)
      x = local_response_normalization(x, self.layer_impl)
    x = x.reshape(x.shape[0], -1)
    for width in (384, 192):
      x = nn.relu(nn.Dense(width, dtype=self.dtype)(x))
      if self.dropout_rate:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype)(x)
