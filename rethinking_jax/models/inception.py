"""The paper's small Inception (1,649,402 params on 28x28x3), with and without batch-norm.

The count holds only with one per-channel offset per conv: a bias-free conv followed by
batch-norm with shift but no scale (TF's default), or, without batch-norm, a conv with bias.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from rethinking_jax.models.defaults import BN_EPSILON, BN_MOMENTUM
from rethinking_jax.models.layers import max_pool
from rethinking_jax.models.member_conv import conv_general_dilated


class ConvUnit(nn.Module):
  """Conv(k, C, s), SAME -> BatchNorm (shift only) -> ReLU; or conv+bias -> ReLU without BN."""

  features: int
  kernel: int
  stride: int = 1
  batch_norm: bool = True
  bn_momentum: float = BN_MOMENTUM
  bn_epsilon: float = BN_EPSILON
  dtype: Any = jnp.float32
  conv: str = "xla"             # convolution formulation under vmap (models/member_conv.py)

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.Conv(self.features, (self.kernel, self.kernel), (self.stride, self.stride),
                padding="SAME", use_bias=not self.batch_norm, dtype=self.dtype,
                conv_general_dilated=conv_general_dilated(self.conv))(x)
    if self.batch_norm:
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=self.bn_epsilon, use_scale=False, use_bias=True,
                       dtype=self.dtype)(x)
    return nn.relu(x)


class InceptionSmall(nn.Module):
  """Conv(3,96) -> 2 Inception -> Downsample -> 4 Inception -> Downsample -> 2 Inception."""

  num_classes: int = 10
  batch_norm: bool = True
  bn_momentum: float = BN_MOMENTUM
  bn_epsilon: float = BN_EPSILON
  dtype: Any = jnp.float32
  layer_impl: str = "xla"       # max-pool formulation (models/layers.py)
  conv: str = "xla"             # convolution formulation under vmap (models/member_conv.py)

  @nn.compact
  def __call__(self, x, train: bool = False):
    unit = lambda c, k, s=1: ConvUnit(c, k, s, self.batch_norm, self.bn_momentum,
                                      self.bn_epsilon, self.dtype, self.conv)

    def inception(x, c1, c3):
      return jnp.concatenate([unit(c1, 1)(x, train), unit(c3, 3)(x, train)], axis=-1)

    def downsample(x, c3):
      pooled = max_pool(x, 3, 2, "SAME", self.layer_impl)
      return jnp.concatenate([unit(c3, 3, 2)(x, train), pooled], axis=-1)

    x = unit(96, 3)(x, train)
    x = inception(x, 32, 32)
    x = inception(x, 32, 48)
    x = downsample(x, 80)
    for c1, c3 in ((112, 48), (96, 64), (80, 80), (48, 96)):
      x = inception(x, c1, c3)
    x = downsample(x, 96)
    x = inception(x, 176, 160)
    x = inception(x, 176, 160)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, dtype=self.dtype)(x)
