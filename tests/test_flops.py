"""FLOPs counted from the jaxpr (models/flops.py) against hand counts."""

import flax.linen as nn
import jax.numpy as jnp
import pytest

from rethinking_jax import models
from rethinking_jax.models import flops


def test_mlp_step_flops_equal_the_hand_count():
  # forward 2*(2352*512 + 512*10); backward: both weight gradients, and the hidden layer's
  # input gradient (512*10) -- none for the input itself
  fwd = 2 * (2352 * 512 + 512 * 10)
  expected = 3 * fwd - 2 * 2352 * 512
  got = flops.train_flops_per_example(models.build("mlp_1x512"), (28, 28, 3), batch=4)
  assert got == pytest.approx(expected, rel=1e-9)


class TwoConvs(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(8, (3, 3), padding="SAME", use_bias=False)(x)         # 16x16x3 -> 16x16x8
    x = nn.Conv(4, (3, 3), strides=2, padding="SAME", use_bias=False)(x)  # -> 8x8x4
    return nn.Dense(10, use_bias=False)(jnp.mean(x, axis=(1, 2)))


def test_conv_step_flops_equal_the_hand_count_strided_input_gradient_included():
  conv1 = 2 * 16 * 16 * 8 * 9 * 3
  conv2 = 2 * 8 * 8 * 4 * 9 * 8
  dense = 2 * 4 * 10
  # conv1: forward + weight gradient; conv2: forward, weight and input gradient (the input
  # gradient of a stride-2 convolution has conv2's multiply-adds); dense: all three
  expected = 2 * conv1 + 3 * conv2 + 3 * dense
  got = flops.train_flops_per_example(TwoConvs(), (16, 16, 3), batch=2)
  assert got == pytest.approx(expected, rel=1e-9)
