"""Multi-layer perceptrons: MLP 1x512 (1,209,866 params) and 3x512 (1,735,178) on 28x28x3."""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
  """Flatten -> [Dense(h) -> ReLU (-> Dropout)] per hidden layer -> Dense(num_classes)."""

  hidden: Sequence[int] = (512,)
  num_classes: int = 10
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      x = nn.relu(nn.Dense(width, dtype=self.dtype)(x))
      if self.dropout_rate:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype)(x)
