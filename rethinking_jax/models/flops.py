"""FLOPs of one SGD step, counted from its jaxpr: the same on every backend.

XLA's GPU cost analysis counts no cuDNN convolution (it printed 0.2% MFU for the small
Inception on an H200), so MFU figures need a count that does not ask the compiler. This one
walks the jaxpr of the loss gradient -- forward and backward, exactly the convolutions and
matrix products JAX asks the backend for -- and counts 2 FLOPs per multiply-add of every
`dot_general` and `conv_general_dilated`. Element-wise work (activations, batch-norm, the
optimizer) is not counted, as is usual for MFU.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax


def _conv_flops(eqn) -> float:
  """2 x output elements x the multiply-adds behind each: the kernel window times its input
  features per group. An input-dilated convolution (the input gradient of a strided one)
  multiplies by the inserted zeros too; only 1 / prod(lhs_dilation) of the window is real."""
  rhs = eqn.invars[1].aval.shape
  rhs_spec = eqn.params["dimension_numbers"].rhs_spec  # (out feature, in feature, *spatial)
  window = rhs[rhs_spec[1]] * math.prod(rhs[d] for d in rhs_spec[2:])
  dilation = math.prod(eqn.params.get("lhs_dilation") or (1,))
  return 2.0 * math.prod(eqn.outvars[0].aval.shape) * window / dilation


def _dot_flops(eqn) -> float:
  (contract, _), _ = eqn.params["dimension_numbers"]
  lhs = eqn.invars[0].aval.shape
  return 2.0 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in contract)


def _sub_jaxprs(value):
  if isinstance(value, jax.extend.core.ClosedJaxpr):
    yield value.jaxpr
  elif isinstance(value, jax.extend.core.Jaxpr):
    yield value
  elif isinstance(value, tuple | list):
    for v in value:
      yield from _sub_jaxprs(v)


def equations(jaxpr, times: float = 1.0):
  """(equation, how many times it runs) of a jaxpr and every jaxpr nested in it (a scan's
  body `length` times; a cond's branches are all yielded, each once per run of the cond)."""
  for eqn in jaxpr.eqns:
    yield eqn, times
    inner = times * (eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1)
    for value in eqn.params.values():
      for sub in _sub_jaxprs(value):
        yield from equations(sub, inner)


def _eqn_flops(eqn) -> float:
  if eqn.primitive.name == "conv_general_dilated":
    return _conv_flops(eqn)
  if eqn.primitive.name == "dot_general":
    return _dot_flops(eqn)
  return 0.0


def jaxpr_flops(jaxpr) -> float:
  """Matrix-product and convolution FLOPs of a jaxpr, nested calls included (a scan's body
  counted `length` times; of a cond's branches, the largest)."""
  total = 0.0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "cond":
      total += max(jaxpr_flops(b.jaxpr) for b in eqn.params["branches"])
      continue
    total += _eqn_flops(eqn)
    times = eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1
    for value in eqn.params.values():
      for sub in _sub_jaxprs(value):
        total += times * jaxpr_flops(sub)
  return total


def train_flops_per_example(model, input_shape, batch: int = 128) -> float:
  """FLOPs of one training step's gradient (forward + backward) per example, for `model`
  (a flax module taking `train=`) on inputs of `input_shape` (H, W, C)."""
  x = jnp.zeros((batch, *input_shape), jnp.float32)
  y = jnp.zeros((batch,), jnp.int32)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
  mutable = ["batch_stats"] if "batch_stats" in variables else False

  def loss(params, rest):
    out = model.apply({**rest, "params": params}, x, train=True, mutable=mutable,
                      rngs={"dropout": jax.random.key(0)})
    logits = out[0] if mutable else out
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  rest = {k: v for k, v in variables.items() if k != "params"}
  jaxpr = jax.make_jaxpr(jax.grad(loss))(variables["params"], rest)
  return jaxpr_flops(jaxpr.jaxpr) / batch
