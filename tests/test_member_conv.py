"""The member strategies' convolution formulations (models/member_conv.py) against one dense
convolution per member, and the strategies built on them (engine/strategies.py).

Bound: each output of a convolution, and each entry of either gradient, is a sum of K
products; two summation orders of the same terms differ by at most 2 * gamma_K * (the sum of
the terms' magnitudes), gamma_K = K u / (1 - K u), u = 2^-24 (float32). The magnitudes are
the reference convolution and its VJP applied to |x|, |w|, |g|. K: kh*kw*Cin forward,
kh*kw*Cout for the input gradient, N*Ho*Wo for the kernel's.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_same_conv_step, fit, float32_gamma, tiny_config

from rethinking_jax import models
from rethinking_jax.base.errors import UserError
from rethinking_jax.engine import assemble, strategies
from rethinking_jax.models import member_conv

DN = ("NHWC", "HWIO", "NHWC")


def _conv(form, strides, padding):
  conv = member_conv.conv_general_dilated(form)
  return lambda x, w: conv(x, w, strides, padding,
                           dimension_numbers=jax.lax.conv_dimension_numbers(x.shape, w.shape, DN))


def _forward_and_grads(f, x, w, g):
  y, vjp = jax.vjp(f, x, w)
  return (y, *vjp(g))


@pytest.mark.parametrize("form", ["per_member", "patches"])
@pytest.mark.parametrize("strides,padding", [((1, 1), "SAME"), ((2, 2), "SAME"),
                                             ((2, 1), "VALID"), ((1, 1), [(1, 2), (0, 1)])])
def test_formulation_equals_a_dense_convolution_per_member(form, strides, padding):
  """Under vmap over 3 members: forward, input gradient and kernel gradient."""
  e, n, h, w_, cin, cout, kh, kw = 3, 4, 9, 8, 5, 7, 3, 2
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (e, n, h, w_, cin))
  w = jax.random.normal(keys[1], (e, kh, kw, cin, cout))
  reference = _conv("xla", strides, padding)
  y_shape = jax.eval_shape(reference, x[0], w[0]).shape
  g = jax.random.normal(keys[2], (e, *y_shape))
  got = jax.jit(jax.vmap(lambda *a: _forward_and_grads(_conv(form, strides, padding), *a)))(
      x, w, g)
  for m in range(e):  # the truth: each member's own dense convolution
    want = _forward_and_grads(reference, x[m], w[m], g[m])
    size = _forward_and_grads(reference, jnp.abs(x[m]), jnp.abs(w[m]), jnp.abs(g[m]))
    ks = (kh * kw * cin, kh * kw * cout, n * y_shape[1] * y_shape[2])
    for part, k, a, b, s in zip(("forward", "input grad", "kernel grad"), ks,
                                (got[0][m], got[1][m], got[2][m]), want, size, strict=True):
      diff, bound = np.abs(np.asarray(a) - np.asarray(b)), 2 * float32_gamma(k) * np.asarray(s)
      assert np.all(diff <= bound), (part, float(np.max(diff - bound)))


def test_per_member_skips_the_gradient_of_inputs_that_need_none():
  """The images need no gradient: the per-member VJP then computes the kernel's only."""
  x, w = jnp.ones((2, 1, 5, 5, 3)), jnp.ones((2, 3, 3, 3, 4))
  grad = lambda x, w: jax.grad(lambda w: _conv("per_member", (1, 1), "SAME")(x, w).sum())(w)
  jaxpr = jax.make_jaxpr(jax.vmap(grad))(x, w)
  convs = [eq for eq in jaxpr.jaxpr.eqns if eq.primitive.name == "conv_general_dilated"]
  # 2 members x (forward, kernel gradient; the kernel gradient's VJP traces a forward that
  # XLA drops): 6, where both gradients would make 8.
  assert len(convs) == 6


def _equations(jaxpr):
  """Every equation of `jaxpr` and of the jaxprs inside it."""
  for eq in jaxpr.eqns:
    yield eq
    for value in eq.params.values():
      for sub in value if isinstance(value, (list, tuple)) else [value]:
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          yield from _equations(inner)


def _step_equations(strategy: str, primitive: str):
  """The `primitive` equations of the vmapped gradient step of 3 small-AlexNet members (a
  batch of 2 each) under `strategy`'s model."""
  model = models.build("alexnet_small", conv=strategies.Strategy(strategy).conv_form)
  x = jnp.ones((3, 2, 8, 8, 3))
  params = jax.vmap(lambda x: model.init(jax.random.key(0), x)["params"])(x)
  step = jax.vmap(jax.grad(lambda p, x: model.apply({"params": p}, x).sum()))
  return [eq for eq in _equations(jax.make_jaxpr(step)(params, x).jaxpr)
          if eq.primitive.name == primitive]


def _grouped(eq) -> bool:
  return eq.params["feature_group_count"] > 1 or eq.params["batch_group_count"] > 1


def test_hybrid_runs_dense_convolutions_and_vmap_grouped_ones():
  assert any(_grouped(eq) for eq in _step_equations("vmap", "conv_general_dilated"))
  hybrid = _step_equations("hybrid", "conv_general_dilated")
  assert hybrid and not any(_grouped(eq) for eq in hybrid)
  assert all(eq.invars[0].aval.shape[0] == 2 for eq in hybrid)  # one member's batch


def test_patches_runs_the_members_convolutions_as_batched_matmuls():
  """Both conv layers (5x5, 3 and 64 input channels) meet their kernels in matmuls batched
  over the 3 members; no convolution is left with a model kernel's layout (5x5, 64 output
  features per member): the ones left gather patches."""
  batched_k = {eq.invars[1].aval.shape[1] for eq in _step_equations("patches", "dot_general")
               if eq.params["dimension_numbers"][1][1] == (0,)
               and eq.invars[1].aval.ndim == 3 and eq.invars[1].aval.shape[0] == 3}
  assert {5 * 5 * 3, 5 * 5 * 64} <= batched_k
  model_kernel = lambda shape: shape[:3] in ((5, 5, 3), (5, 5, 64)) and shape[3] in (64, 3 * 64)
  assert any(model_kernel(eq.invars[1].aval.shape)
             for eq in _step_equations("vmap", "conv_general_dilated"))
  convs = _step_equations("patches", "conv_general_dilated")
  assert convs and not any(model_kernel(eq.invars[1].aval.shape) for eq in convs)


@pytest.fixture
def streams_here(monkeypatch):
  """`streams` allowed on this CPU, where XLA ignores the stream annotations (and runs the
  calls slowly: fine for a few steps of a tiny model)."""
  monkeypatch.setattr(strategies, "STREAM_PLATFORMS", ("gpu", jax.default_backend()))


def test_streams_is_refused_off_gpus():
  config = tiny_config(model="alexnet_small", member_strategy="streams")
  with pytest.raises(UserError, match="^member_strategy: streams .* allowed here: auto, vmap"):
    assemble.prepare(config)


def test_streams_puts_each_member_on_a_stream_of_its_own(streams_here):
  config = tiny_config(model="alexnet_small", randomizations="random_labels,true_labels",
                       seeds="3,4,5", member_strategy="streams", synthetic_train=16,
                       synthetic_test=16, num_epochs=1)
  run = assemble.prepare(config)
  programs, state = run.programs, run.programs.init(run.members)
  labels, data = run.inputs
  text = programs._chunk_fn.lower(state, run.members, labels, data, jnp.int32(0),
                                  jnp.int32(0)).as_text()
  annotated = {f'_xla_stream_annotation = "{k}"' for k in range(1, strategies.STREAMS + 1)}
  assert all(a in text for a in annotated)  # 6 members over 4 streams


@pytest.mark.parametrize("model", ["alexnet_small", "inception_small"])
def test_gpu_member_strategies_train_like_one_member_at_a_time(model, streams_here):
  """hybrid, patches and streams: one SGD step of three members against `sequential`
  (helpers.assert_same_conv_step says what is compared and why)."""
  config = tiny_config(model=model, randomizations="random_labels,gaussian,true_labels",
                       seeds="3", learning_rate=0.02, synthetic_train=16, synthetic_test=16,
                       num_epochs=1, member_strategy="sequential")
  _, sequential = fit(config)
  for strategy in ("hybrid", "patches", "streams"):
    run, result = fit(tiny_config(**{**dict(config.items()), "member_strategy": strategy}))
    assert run.programs.strategy == strategy and result.steps == 1
    assert_same_conv_step(run, result, sequential)


def test_an_unknown_convolution_form_is_refused():
  with pytest.raises(Exception, match="conv"):
    models.build("alexnet_small", conv="winograd")


def test_memory_counts_every_vmapped_strategy_s_members_at_once():
  """hybrid and patches hold every member's activations in one step, as vmap does: the
  memory check refuses them where it refuses vmap, and not where members go one by one."""
  from rethinking_jax.engine import memory

  est = memory.Estimate(per_member=1, per_parallel=100, fixed=0)
  budget = (int(10 * 100 / memory.USABLE_SHARE), "test")  # room for ~10 members at once
  for name in ("vmap", "hybrid", "patches"):
    with pytest.raises(UserError, match="^members: 40 members of m need"):
      memory.check(est, 40, strategies.Strategy(name), "m", 128, budget)
  for name in ("sequential", "unrolled", "map", "streams"):
    assert memory.check(est, 40, strategies.Strategy(name), "m", 128, budget) == 140


def test_a_compiled_programs_buffers_are_logged_beside_the_memory_estimate():
  """The compile log line carries XLA's own buffer sizes (memory_analysis) and the run's
  pre-compile estimate (memory.check's bytes, which prepare hands to the programs)."""
  compiled = jax.jit(lambda x: x * 2.0, donate_argnums=0).lower(
      jnp.ones((512, 1024), jnp.float32)).compile()   # 2 MB in, 2 MB out, donated
  line = strategies._compiled_memory(compiled, 3 * 2**20)
  assert line.startswith("; XLA's buffers for it: arguments 2.0 MB, outputs 2.0 MB"), line
  assert line.endswith("; the run's pre-compile memory estimate: 3.0 MB"), line
  run = assemble.prepare(tiny_config(model="mlp_1x32"))
  assert run.programs.memory_estimate > 0
