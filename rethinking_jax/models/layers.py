"""Max-pooling and LRN in two formulations: XLA's reference ops, and custom-VJP ones for CPUs.

`layer_impl=xla`: flax's `nn.max_pool` (lax.reduce_window; its gradient is XLA's
select-and-scatter) and LRN as a `reduce_window` sum. On XLA:CPU (jaxlib 0.10.2) the
select-and-scatter behind a 3x3/2 max-pool expands into iotas, a variadic reduce-window and a
scatter: ~250 ms of a ~600 ms small-AlexNet step at batch 128 (benchmarks/layer_profile.py).

`layer_impl=custom`: the same functions written as elementwise maxima over the window's
strided slices, with hand-written gradients that XLA fuses into a few loops:
- max-pool: the gradient goes to the *first* maximum of each window in row-major window
  order, as select-and-scatter's `>=` select does (ties included, tested), and is placed back
  with strided pads -- no scatter;
- LRN: y = x * d^(-3/4), d = bias + alpha * window_sum(x^2); the gradient is
  g * d^(-3/4) - 2 * alpha * beta * x * window_sum(g * x * d^(-7/4)) (the channel window sum
  is its own adjoint), with d^(-3/4) = rsqrt(d) * sqrt(rsqrt(d)) instead of a pow.
The two agree up to float rounding (tests/test_layers.py derives the bound).

`auto` (resolve): `custom` on CPU, where it was measured; `xla` elsewhere (on a GPU the
custom formulations are unmeasured, and cuDNN's pooling gradient is not a scatter).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from rethinking_jax.base.errors import unknown_name

LAYER_IMPLS = ("auto", "xla", "custom")

LRN_DEPTH_RADIUS = 4
LRN_BIAS = 1.0
LRN_ALPHA = 0.001 / 9.0
LRN_BETA = 0.75


def resolve(layer_impl: str, platform: str) -> str:
  """`auto`: `custom` on CPU (measured there: benchmarks/RESULTS.md), `xla` elsewhere."""
  if layer_impl not in LAYER_IMPLS:
    raise unknown_name("layer_impl", layer_impl, LAYER_IMPLS)
  if layer_impl != "auto":
    return layer_impl
  return "custom" if platform == "cpu" else "xla"


# --- max-pool ----------------------------------------------------------------------------

def _same_padding(size: int, window: int, stride: int) -> tuple[int, tuple[int, int]]:
  """Output size and (low, high) padding of a SAME window (TF's rule, as lax uses)."""
  out = -(-size // stride)
  total = max((out - 1) * stride + window - size, 0)
  return out, (total // 2, total - total // 2)


def _geometry(shape, window: int, stride: int, padding: str):
  _, h, w, _ = shape
  if padding == "SAME":
    (ho, ph), (wo, pw) = _same_padding(h, window, stride), _same_padding(w, window, stride)
  else:  # VALID
    ho, wo, ph, pw = (h - window) // stride + 1, (w - window) // stride + 1, (0, 0), (0, 0)
  return ho, wo, ph, pw


def _window_slices(padded, window: int, stride: int, ho: int, wo: int):
  """The window's k-th element for every output position, k in row-major window order."""
  for i in range(window):
    for j in range(window):
      yield padded[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]


def _pad_input(x, ph, pw):
  return jnp.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=-jnp.inf)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool_slices(x, window: int, stride: int, padding: str):
  """nn.max_pool(x, (window, window), (stride, stride), padding) on NHWC, for padding SAME or
  VALID; same values, gradient without select-and-scatter."""
  ho, wo, ph, pw = _geometry(x.shape, window, stride, padding)
  return functools.reduce(jnp.maximum, _window_slices(_pad_input(x, ph, pw), window, stride,
                                                      ho, wo))


def _max_pool_fwd(x, window, stride, padding):
  y = max_pool_slices(x, window, stride, padding)
  return y, (x, y)


def _first_maxima(padded, y, g, window, stride, ho, wo):
  """g where the k-th window element is its window's first maximum (row-major order), else
  0, for every k: a window's gradient goes to its first maximum only."""
  taken = jnp.zeros(y.shape, bool)
  zero = jnp.zeros((), g.dtype)
  for element in _window_slices(padded, window, stride, ho, wo):
    first = (element == y) & ~taken
    taken = taken | first
    yield jnp.where(first, g, zero)


def _shift(part, rows: int, cols: int):
  """part padded to one more row and column: `rows` / `cols` (0 or 1) of them before it."""
  return jnp.pad(part, ((0, 0), (rows, 1 - rows), (cols, 1 - cols), (0, 0)))


def _max_pool_bwd_3x3_stride_2(parts, ho, wo):
  """The padded input's gradient of a 3x3 / 2 pool from the 9 first-maximum parts, without a
  full-size array per part: padded row 2a + i takes window row a's element i, so an even row
  2a' takes elements 0 (window a') and 2 (window a' - 1), an odd row 2a' + 1 element 1 only;
  the same for columns. The four (row, column) parity planes are summed in the parts' own
  order k = 0..8 (the other terms are exact zeros: the same floats as the strided pads) and
  interleaved by one reshape."""
  # parity plane (p, q) <- the parts (i, j) with i % 2 == p, j % 2 == q, in k order; part
  # (i, j) lands one window further down (right) where i (j) is 2
  planes = [[None, None], [None, None]]
  for k, part in enumerate(parts):
    i, j = divmod(k, 3)
    moved = _shift(part, 1 if i == 2 else 0, 1 if j == 2 else 0)
    p, q = i % 2, j % 2
    planes[p][q] = moved if planes[p][q] is None else planes[p][q] + moved
  n, _, _, ch = parts[0].shape
  grid = jnp.stack([jnp.stack(planes[p], axis=3) for p in range(2)], axis=2)
  return grid.reshape(n, 2 * (ho + 1), 2 * (wo + 1), ch)  # [n, a', p, b', q, c] interleaved


def _placed_by_pads(parts, window, stride, ho, wo, hp, wp):
  """The padded input's gradient: each part back at its element's positions (stride - 1
  zeros between rows / columns), summed in k order. Any window and stride."""
  grad = None
  for k, part in enumerate(parts):
    i, j = divmod(k, window)
    zero = jnp.zeros((), part.dtype)
    placed = lax.pad(part, zero, ((0, 0, 0), (i, hp - i - stride * (ho - 1) - 1, stride - 1),
                                  (j, wp - j - stride * (wo - 1) - 1, stride - 1), (0, 0, 0)))
    grad = placed if grad is None else grad + placed
  return grad


def _max_pool_bwd(window, stride, padding, residuals, g):
  x, y = residuals
  _, h, w, _ = x.shape
  ho, wo, ph, pw = _geometry(x.shape, window, stride, padding)
  padded = _pad_input(x, ph, pw)
  parts = list(_first_maxima(padded, y, g, window, stride, ho, wo))
  if (window, stride) == (3, 2):  # AlexNet's and the Inceptions' pools
    grad = _max_pool_bwd_3x3_stride_2(parts, ho, wo)
  else:
    grad = _placed_by_pads(parts, window, stride, ho, wo, *padded.shape[1:3])
  return (grad[:, ph[0]:ph[0] + h, pw[0]:pw[0] + w],)


max_pool_slices.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(x, window: int, stride: int, padding: str, impl: str):
  """A square max-pool of NHWC `x` in formulation `impl` (xla | custom). Named `max_pool` in
  XLA's op metadata, forward and gradient (benchmarks/layer_profile.py reads it)."""
  with jax.named_scope("max_pool"):
    if impl == "custom":
      return max_pool_slices(x, window, stride, padding)
    return nn.max_pool(x, (window, window), strides=(stride, stride), padding=padding)


# --- local response normalization ---------------------------------------------------------

def lrn_reference(x, depth_radius: int = LRN_DEPTH_RADIUS, bias: float = LRN_BIAS,
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


def _channel_window_sum(x):
  """sum(x[..., d - r : d + r + 1]) with zeros beyond the edges: self-adjoint."""
  c, r = x.shape[-1], LRN_DEPTH_RADIUS
  padded = jnp.pad(x, ((0, 0),) * (x.ndim - 1) + ((r, r),))
  return functools.reduce(jnp.add, (padded[..., k:k + c] for k in range(2 * r + 1)))


def _pow_minus_three_quarters(d):
  r = lax.rsqrt(d)
  return r * jnp.sqrt(r)


assert LRN_BETA == 0.75  # _pow_minus_three_quarters is d ** -LRN_BETA


@jax.custom_vjp
def lrn_fused(x):
  """lrn_reference(x) with the paper's constants, as fused elementwise loops."""
  return _lrn_fwd(x)[0]


def _lrn_fwd(x):
  d = LRN_BIAS + LRN_ALPHA * _channel_window_sum(x * x)
  return x * _pow_minus_three_quarters(d), (x, d)


def _lrn_bwd(residuals, g):
  x, d = residuals
  scale = _pow_minus_three_quarters(d)
  return (g * scale - (2 * LRN_ALPHA * LRN_BETA) * x * _channel_window_sum(g * x * scale / d),)


lrn_fused.defvjp(_lrn_fwd, _lrn_bwd)


def local_response_normalization(x, impl: str = "xla"):
  """The paper's LRN (TF semantics, docs/PROTOCOL.md §3) in formulation `impl` (xla | custom); named
  `lrn` in XLA's op metadata."""
  with jax.named_scope("lrn"):
    return lrn_fused(x) if impl == "custom" else lrn_reference(x)
