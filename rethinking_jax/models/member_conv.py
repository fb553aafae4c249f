"""How a convolution runs when vmap batches it over members (the member strategies).

`vmap` over members turns a dense convolution into a grouped one (feature_group_count = E),
which XLA:CPU and cuDNN run slowly (benchmarks/RESULTS.md). Two other formulations keep the
program vmapped -- batch-norm, activations, pooling, loss and optimizer batched over the
member axis -- and change only the convolutions:

- `xla`: lax.conv_general_dilated as it is (vmap makes it grouped);
- `per_member`: under vmap, one dense lax convolution per member, forward and both gradients
  (a custom VJP whose three parts are `custom_vmap`s looping over the member axis): the
  `hybrid` strategy;
- `patches`: the convolution as its input patches (lax.conv_general_dilated_patches, an
  exact gather) times the kernel as a matrix; under vmap the patches of all members are one
  batch and the product one matmul batched over members: the `patches` strategy.

Outside vmap all three are one member's convolution, equal up to float rounding (another
order of the same sums; tests/test_member_conv.py derives the bound).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_batching import custom_vmap

CONV_FORMS = ("xla", "per_member", "patches")


def _one_per_member(fn):
  """fn(*arrays) whose vmap runs fn once per member (unbatched arguments shared) and stacks
  the results, instead of batching fn's operations."""
  wrapped = custom_vmap(fn)

  @wrapped.def_vmap
  def rule(axis_size, in_batched, *args):
    outs = [fn(*(a[m] if batched else a for a, batched in zip(args, in_batched, strict=True)))
            for m in range(axis_size)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
    return stacked, jax.tree.map(lambda _: True, stacked)

  return wrapped


def _per_member_conv(lhs, rhs, window_strides, padding, **kwargs):
  """lax.conv_general_dilated whose vmap is a dense convolution per member, forward and
  gradients; the input gradient is skipped where the input needs none (the images)."""
  conv = functools.partial(lax.conv_general_dilated, window_strides=window_strides,
                           padding=padding, **kwargs)
  forward = _one_per_member(conv)
  both_grads = _one_per_member(lambda x, w, g: jax.vjp(conv, x, w)[1](g))
  kernel_grad = _one_per_member(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])

  @jax.custom_vjp
  def f(x, w):
    return forward(x, w)

  def f_fwd(x, w):
    # symbolic_zeros: x.perturbed says whether anything differentiates through the input;
    # the residuals' structure carries it to the backward pass.
    return forward(x.value, w.value), (x.value, w.value, () if x.perturbed else None)

  def f_bwd(residuals, g):
    x, w, input_needed = residuals
    if input_needed is None:
      return None, kernel_grad(x, w, g)
    return both_grads(x, w, g)

  f.defvjp(f_fwd, f_bwd, symbolic_zeros=True)
  return f(lhs, rhs)


def _patches_conv(lhs, rhs, window_strides, padding, *, lhs_dilation=None, rhs_dilation=None,
                  dimension_numbers=None, feature_group_count=1, precision=None):
  """The convolution as patches @ kernel. The patches come from an identity-kernel
  convolution at HIGHEST precision (a gather: exact, also where the matmul may use TF32);
  their features are ordered (input channel, kernel row, kernel column)."""
  if feature_group_count != 1:
    raise NotImplementedError("patches: grouped convolutions (feature_group_count > 1)")
  dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  # This module's models are NHWC / HWIO -> NHWC (flax's default).
  assert dn == lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC")), dn
  kh, kw, cin, cout = rhs.shape
  patches = lax.conv_general_dilated_patches(
      lhs, (kh, kw), window_strides, padding, lhs_dilation=lhs_dilation,
      rhs_dilation=rhs_dilation, dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=lax.Precision.HIGHEST)
  kernel = rhs.transpose(2, 0, 1, 3).reshape(cin * kh * kw, cout)
  return lax.dot_general(patches, kernel, (((3,), (0,)), ((), ())), precision=precision)


def conv_general_dilated(form: str):
  """The function with lax.conv_general_dilated's signature that runs convolutions in
  `form` (one of CONV_FORMS): what a model hands flax's nn.Conv."""
  return {"xla": lax.conv_general_dilated, "per_member": _per_member_conv,
          "patches": _patches_conv}[form]
