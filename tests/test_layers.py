"""The custom max-pool and LRN (models/layers.py) equal XLA's reference ops.

Tolerances follow from the arithmetic, with u = 2^-24 the float32 unit roundoff (half of
numpy's eps):
- a max is exact, so forward max-pools are compared bit for bit;
- a max-pool gradient entry is a sum of at most m = ceil(window / stride)^2 window
  contributions; two summation orders differ by at most 2 (m - 1) u sum(|terms|), and
  sum(|terms|) is the reference gradient of |g|;
- ties: where a window holds equal maxima both give the gradient to the first one in
  row-major window order (select-and-scatter's `>=` select), tested with integer data where
  sums are exact, so bit for bit.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rethinking_jax import models
from rethinking_jax.models import layers

U = 2.0 ** -24


def _reference_pool(x, window, stride, padding):
  return layers.max_pool(x, window, stride, padding, "xla")


def _custom_pool(x, window, stride, padding):
  return layers.max_pool(x, window, stride, padding, "custom")


def _vjp(fn, x, g):
  return jax.vjp(fn, x)[1](g)[0]


@pytest.mark.parametrize("shape,window,stride,padding", [
    ((3, 28, 28, 8), 3, 2, "SAME"),     # the paper's nets: 3x3/2 SAME
    ((2, 7, 9, 5), 3, 2, "SAME"),       # odd sides: uneven SAME padding
    ((2, 15, 15, 4), 3, 2, "VALID"),    # Inception V3's pools
    ((2, 8, 8, 3), 2, 2, "SAME"),       # non-overlapping windows
    ((2, 9, 9, 3), 3, 1, "SAME"),       # stride 1: 9 contributions per entry
])
def test_max_pool_equals_reduce_window(shape, window, stride, padding):
  x = jax.random.normal(jax.random.key(0), shape)
  ref = functools.partial(_reference_pool, window=window, stride=stride, padding=padding)
  new = functools.partial(_custom_pool, window=window, stride=stride, padding=padding)
  y_ref, y_new = ref(x), new(x)
  np.testing.assert_array_equal(np.asarray(y_new), np.asarray(y_ref))
  g = jax.random.normal(jax.random.key(1), y_ref.shape)
  m = math.ceil(window / stride) ** 2
  bound = 2 * (m - 1) * U * np.asarray(_vjp(ref, x, jnp.abs(g)))
  diff = np.abs(np.asarray(_vjp(new, x, g)) - np.asarray(_vjp(ref, x, g)))
  assert np.all(diff <= bound), float(np.max(diff - bound))


def test_max_pool_gradient_goes_to_the_first_of_tied_maxima():
  # Small integers: many windows hold several equal maxima; all sums are exact.
  x = jax.random.randint(jax.random.key(2), (2, 12, 12, 4), 0, 3).astype(jnp.float32)
  x = x.at[:, :6, :6].set(1.0)  # a flat region: every window tied
  g = jax.random.randint(jax.random.key(3), (2, 6, 6, 4), -4, 5).astype(jnp.float32)
  ref = functools.partial(_reference_pool, window=3, stride=2, padding="SAME")
  new = functools.partial(_custom_pool, window=3, stride=2, padding="SAME")
  np.testing.assert_array_equal(np.asarray(_vjp(new, x, g)), np.asarray(_vjp(ref, x, g)))


@pytest.mark.parametrize("shape,padding", [((2, 28, 28, 5), "SAME"), ((2, 27, 27, 3), "VALID"),
                                           ((3, 14, 13, 4), "SAME"), ((2, 8, 9, 3), "VALID")])
def test_the_3x3_stride_2_gradient_is_the_strided_pads_bit_for_bit(shape, padding):
  """The parity-plane gradient of the nets' 3x3 / 2 pools adds the same nonzero terms in the
  same order as placing every window element back with a strided pad: the same floats."""
  x = jnp.round(jax.random.normal(jax.random.key(4), shape) * 2) / 2  # many ties
  y = layers.max_pool_slices(x, 3, 2, padding)
  g = jax.random.normal(jax.random.key(5), y.shape)
  ho, wo, ph, pw = layers._geometry(x.shape, 3, 2, padding)
  padded = layers._pad_input(x, ph, pw)
  parts = list(layers._first_maxima(padded, y, g, 3, 2, ho, wo))
  want = layers._placed_by_pads(parts, 3, 2, ho, wo, *padded.shape[1:3])
  want = want[:, ph[0]:ph[0] + shape[1], pw[0]:pw[0] + shape[2]]
  got = layers._max_pool_bwd(3, 2, padding, (x, y), g)[0]
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


# LRN. y = x d^-b, d = 1 + a S(x^2). Each formulation's relative error in y is at most the sum
# of its operations' relative errors: x^2 (u), the 9-term window sum of positive terms (8u),
# times a (u), plus 1 (u), d^-b (the reference's pow and divide, or rsqrt, sqrt and a
# product: 4u each, the transcendental ones counted at 2u), times x (u): 16u. Two
# formulations: 32u of |y|. The gradient's two terms g d^-b and 2ab x S(g x d^-b / d) carry
# the same 16u per formulation plus the second window sum's 8u and 4 more products: 28u each,
# 56u of the sum of the terms' magnitudes.
LRN_FORWARD_REL = 32 * U
LRN_GRADIENT_REL = 56 * U


def _lrn_terms_magnitude(x, g):
  """|g d^-b| + 2ab |x| S(|g x| d^-b / d): what the gradient's error is relative to."""
  d = layers.LRN_BIAS + layers.LRN_ALPHA * layers._channel_window_sum(x * x)
  scale = d ** -layers.LRN_BETA
  return (jnp.abs(g) * scale + 2 * layers.LRN_ALPHA * layers.LRN_BETA * jnp.abs(x)
          * layers._channel_window_sum(jnp.abs(g * x) * scale / d))


@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: a S(x^2) ~ 1, where d^-b matters
def test_lrn_fused_equals_reference(scale):
  x = scale * jax.random.normal(jax.random.key(4), (3, 7, 7, 64))
  g = jax.random.normal(jax.random.key(5), x.shape)
  ref = lambda x: layers.local_response_normalization(x, "xla")
  new = lambda x: layers.local_response_normalization(x, "custom")
  y_ref, y_new = np.asarray(ref(x)), np.asarray(new(x))
  assert np.all(np.abs(y_new - y_ref) <= LRN_FORWARD_REL * np.abs(y_ref))
  bound = LRN_GRADIENT_REL * np.asarray(_lrn_terms_magnitude(x, g))
  diff = np.abs(np.asarray(_vjp(new, x, g)) - np.asarray(_vjp(ref, x, g)))
  assert np.all(diff <= bound), float(np.max(diff - bound))


def test_lrn_reference_is_tf_semantics():
  x = np.random.default_rng(0).normal(size=(1, 2, 2, 12)).astype(np.float32)
  sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (4, 4)))
  window_sum = sum(sq[..., k:k + 12] for k in range(9))
  want = x / (1.0 + 0.001 / 9.0 * window_sum) ** 0.75
  for impl in ("xla", "custom"):
    np.testing.assert_allclose(layers.local_response_normalization(jnp.asarray(x), impl),
                               want, rtol=LRN_FORWARD_REL)


@pytest.mark.parametrize("name", ["alexnet_small", "inception_small"])
def test_models_are_the_same_function_in_both_formulations(name):
  """Same parameters and batch-norm state, same logits (to rounding), in train mode."""
  x = jax.random.normal(jax.random.key(6), (4, 16, 16, 3))
  ref, new = models.build(name, layer_impl="xla"), models.build(name, layer_impl="custom")
  variables = ref.init(jax.random.key(7), x)
  run = lambda model: model.apply(variables, x, train=True, mutable=["batch_stats"])[0]
  np.testing.assert_allclose(run(new), run(ref), rtol=1e-5, atol=1e-6)


def test_auto_picks_custom_on_cpu_only():
  assert layers.resolve("auto", "cpu") == "custom"
  assert layers.resolve("auto", "gpu") == "xla"
  assert layers.resolve("xla", "cpu") == "xla"
  assert models.layer_impl_for("mlp_1x512", "auto") is None
  with pytest.raises(Exception, match="layer_impl"):
    layers.resolve("fast", "cpu")
