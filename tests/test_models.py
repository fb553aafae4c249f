import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rethinking_jax import models
from rethinking_jax.base.errors import UserError


@pytest.mark.parametrize("name", models.MODELS)
def test_param_counts_match_table1(name):
  assert models.param_count(name, (28, 28, 3), 10) == models.PAPER_PARAM_COUNTS[name]


def test_inception_bn_has_shift_only_and_nobn_has_conv_bias():
  shapes = jax.eval_shape(models.build("inception_small").init, jax.random.key(0),
                          jnp.zeros((1, 28, 28, 3)))
  unit = shapes["params"]["ConvUnit_0"]
  assert set(unit["BatchNorm_0"]) == {"bias"}
  assert set(unit["Conv_0"]) == {"kernel"}
  assert "batch_stats" in shapes
  nobn = jax.eval_shape(models.build("inception_small_nobn").init, jax.random.key(0),
                        jnp.zeros((1, 28, 28, 3)))
  assert set(nobn["params"]["ConvUnit_0"]["Conv_0"]) == {"kernel", "bias"}
  assert "batch_stats" not in nobn


@pytest.mark.parametrize("name", models.MODELS)
@pytest.mark.parametrize("shape", [(8, 8, 1), (12, 10, 3)])
def test_any_input_shape(name, shape):
  model = models.build(name, num_classes=7)
  x = jnp.ones((2, *shape))
  variables = model.init(jax.random.key(0), x)
  logits = model.apply(variables, x, train=False)
  assert logits.shape == (2, 7)


def test_lrn_matches_tf_formula():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 3, 3, 12)).astype(np.float32)
  r, bias, alpha, beta = 4, 1.0, 0.001 / 9, 0.75
  expected = np.empty_like(x)
  for d in range(12):
    lo, hi = max(0, d - r), min(12, d + r + 1)
    sqr = (x[..., lo:hi] ** 2).sum(-1)
    expected[..., d] = x[..., d] / (bias + alpha * sqr) ** beta
  got = models.local_response_normalization(jnp.asarray(x))
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_dropout_is_used_in_train_mode_only():
  model = models.build("mlp_1x512", dropout_rate=0.5)
  x = jnp.ones((4, 8, 8, 1))
  v = model.init(jax.random.key(0), x)
  a = model.apply(v, x, train=True, rngs={"dropout": jax.random.key(1)})
  b = model.apply(v, x, train=True, rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(model.apply(v, x), model.apply(v, x))


def test_bn_fields_are_constructor_fields():
  model = models.build("inception_small", bn_momentum=0.9, bn_epsilon=1e-5)
  assert (model.bn_momentum, model.bn_epsilon) == (0.9, 1e-5)


def test_unknown_model_lists_valid_names():
  with pytest.raises(UserError, match="model: unknown value 'resnet'.*alexnet_small.*mlp_1x512"):
    models.build("resnet")


@pytest.mark.parametrize("name", models.MODELS)
def test_every_model_is_differentiable_in_train_mode(name):
  # Compiled: op-by-op (eager) an Inception gradient compiles every primitive on its own and
  # takes several times longer.
  model = models.build(name, dropout_rate=0.0)
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 3))
  variables = jax.jit(model.init)(jax.random.key(1), x)
  has_bn = "batch_stats" in variables

  def loss(params):
    out = model.apply({**variables, "params": params}, x, train=True,
                      mutable=["batch_stats"] if has_bn else [])
    logits = out[0] if isinstance(out, tuple) else out
    return jnp.mean(logits**2)

  grads = jax.jit(jax.grad(loss))(variables["params"])
  norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
  assert all(np.isfinite(norms)) and sum(norms) > 0


def test_inception_v3_matches_the_reference_parameter_count():
  model = models.build("inception_v3", num_classes=1000)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 299, 299, 3)))
  assert models.count_params(shapes["params"]) == models.REFERENCE_TRAINABLE_PARAMS
  assert models.count_params(shapes["batch_stats"]) == 34_432  # Keras' non-trainable count
  out = jax.eval_shape(lambda v, x: model.apply(v, x), shapes, jnp.zeros((2, 299, 299, 3)))
  assert out.shape == (2, 1000)


def test_inception_v3_runs_with_dropout_on_its_smallest_input():
  model = models.build("inception_v3", num_classes=5, dropout_rate=0.2)
  x = jnp.ones((1, 75, 75, 3))
  variables = jax.jit(model.init)(jax.random.key(0), x)
  logits, _ = jax.jit(lambda v: model.apply(v, x, train=True,
                                            rngs={"dropout": jax.random.key(1)},
                                            mutable=["batch_stats"]))(variables)
  assert logits.shape == (1, 5) and bool(jnp.all(jnp.isfinite(logits)))
