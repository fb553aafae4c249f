"""Inception V3 (Szegedy et al. 2016) for Table 2's ImageNet experiments, in Flax Linen.

The layout of the reference Keras application (`keras.applications.InceptionV3`): every conv
is bias-free and followed by batch-norm with a shift but no scale, and ReLU. With 1000
classes it has 23,817,352 trainable parameters (Keras: 23,851,784 in total, of which 34,432
are batch-norm moving statistics). Dropout before the classifier is the paper's ("the only
model with dropout"); rate 0 disables it.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from rethinking_jax.models.defaults import BN_EPSILON, BN_MOMENTUM
from rethinking_jax.models.member_conv import conv_general_dilated

REFERENCE_TRAINABLE_PARAMS = 23_817_352  # keras.applications.InceptionV3, 1000 classes


class InceptionV3(nn.Module):
  num_classes: int = 1000
  dropout_rate: float = 0.0
  bn_momentum: float = BN_MOMENTUM
  bn_epsilon: float = BN_EPSILON
  dtype: Any = jnp.float32
  conv: str = "xla"             # convolution formulation under vmap (models/member_conv.py)

  @nn.compact
  def __call__(self, x, train: bool = False):
    def conv(x, features, kernel, strides=(1, 1), padding="SAME"):
      kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
      x = nn.Conv(features, (kh, kw), strides, padding=padding, use_bias=False,
                  dtype=self.dtype, conv_general_dilated=conv_general_dilated(self.conv))(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=self.bn_epsilon, use_scale=False, dtype=self.dtype)(x)
      return nn.relu(x)

    def avg_pool(x):
      return nn.avg_pool(x, (3, 3), (1, 1), padding="SAME", count_include_pad=False)

    max_pool = lambda x, padding="VALID": nn.max_pool(x, (3, 3), (2, 2), padding=padding)
    cat = lambda *xs: jnp.concatenate(xs, axis=-1)

    x = conv(x, 32, 3, (2, 2), "VALID")
    x = conv(x, 32, 3, padding="VALID")
    x = conv(x, 64, 3)
    x = max_pool(x)
    x = conv(x, 80, 1, padding="VALID")
    x = conv(x, 192, 3, padding="VALID")
    x = max_pool(x)
    for pool_features in (32, 64, 64):                                  # mixed 0-2
      x = cat(conv(x, 64, 1),
              conv(conv(x, 48, 1), 64, 5),
              conv(conv(conv(x, 64, 1), 96, 3), 96, 3),
              conv(avg_pool(x), pool_features, 1))
    x = cat(conv(x, 384, 3, (2, 2), "VALID"),                           # mixed 3
            conv(conv(conv(x, 64, 1), 96, 3), 96, 3, (2, 2), "VALID"),
            max_pool(x))
    for c in (128, 160, 160, 192):                                      # mixed 4-7
      x = cat(conv(x, 192, 1),
              conv(conv(conv(x, c, 1), c, (1, 7)), 192, (7, 1)),
              conv(conv(conv(conv(conv(x, c, 1), c, (7, 1)), c, (1, 7)), c, (7, 1)),
                   192, (1, 7)),
              conv(avg_pool(x), 192, 1))
    x = cat(conv(conv(x, 192, 1), 320, 3, (2, 2), "VALID"),             # mixed 8
            conv(conv(conv(conv(x, 192, 1), 192, (1, 7)), 192, (7, 1)), 192, 3, (2, 2),
                 "VALID"),
            max_pool(x))
    for _ in range(2):                                                  # mixed 9-10
      b3 = conv(x, 384, 1)
      bd = conv(conv(x, 448, 1), 384, 3)
      x = cat(conv(x, 320, 1),
              conv(b3, 384, (1, 3)), conv(b3, 384, (3, 1)),
              conv(bd, 384, (1, 3)), conv(bd, 384, (3, 1)),
              conv(avg_pool(x), 192, 1))
    x = jnp.mean(x, axis=(1, 2))
    if self.dropout_rate:
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype)(x)
