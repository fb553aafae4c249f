"""The models, one record each: what the code knows about a model is said once, here.

Adding a model: write its Flax module (any NHWC input, `num_classes`, `dtype`, and the
constructor fields its record asks for), then add one `ModelRecord` line to RECORDS (or call
`register(record)` from your own code).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rethinking_jax.base.errors import one_of, require, unknown_name
from rethinking_jax.models import defaults, layers, member_conv
from rethinking_jax.models.alexnet import AlexNetSmall
from rethinking_jax.models.inception import InceptionSmall
from rethinking_jax.models.inception_v3 import REFERENCE_TRAINABLE_PARAMS, InceptionV3
from rethinking_jax.models.layers import LAYER_IMPLS, local_response_normalization
from rethinking_jax.models.mlp import MLP

SECTION = defaults.SECTION  # the model fields of a run config


@dataclasses.dataclass(frozen=True)
class ModelRecord:
  """Everything the rest of the code may ask about a model."""

  name: str
  make: Callable[..., nn.Module]       # make(num_classes=, dtype=, **the fields below)
  learning_rate: float                 # the paper's initial learning rate (docs/PROTOCOL.md §4)
  convolutional: bool
  batch_norm: bool = False             # takes bn_momentum / bn_epsilon
  dropout: bool = False                # has dropout layers (takes dropout_rate)
  layer_impl: bool = False             # has max-pool / LRN layers in two formulations
  member_conv: bool = False            # takes `conv`: its convolutions in the member
                                       # strategies' forms (models/member_conv.py)
  min_input: int = 1                   # the smallest input side it accepts
  paper_params: int | None = None      # Table 1's count on 28x28x3, 10 classes
  dataset: str = "cifar10"             # the paper's dataset for it (inception_v3: ImageNet)
  paper: bool = True                   # one of the paper's models (else an addition)


RECORDS = {r.name: r for r in (
    ModelRecord("mlp_1x512", functools.partial(MLP, hidden=(512,)), 0.01, False, dropout=True,
                paper_params=1_209_866),
    ModelRecord("mlp_3x512", functools.partial(MLP, hidden=(512, 512, 512)), 0.01, False,
                dropout=True, paper_params=1_735_178),
    ModelRecord("alexnet_small", AlexNetSmall, 0.01, True, dropout=True, layer_impl=True,
                member_conv=True, paper_params=1_387_786),
    ModelRecord("inception_small", functools.partial(InceptionSmall, batch_norm=True), 0.1,
                True, batch_norm=True, layer_impl=True, member_conv=True,
                paper_params=1_649_402),
    ModelRecord("inception_small_nobn", functools.partial(InceptionSmall, batch_norm=False),
                0.1, True, layer_impl=True, member_conv=True, paper_params=1_649_402),
    # ImageNet (Table 2): inputs of at least 75x75 (299x299 in the paper).
    ModelRecord("inception_v3", InceptionV3, 0.1, True, batch_norm=True, dropout=True,
                member_conv=True, min_input=75, dataset="imagenet2012"),
    # A narrow MLP for the capacity comparisons of the measures study (not in the paper).
    ModelRecord("mlp_1x32", functools.partial(MLP, hidden=(32,)), 0.01, False, dropout=True,
                paper=False),
)}
NAMES = tuple(RECORDS)
# The paper's CIFAR10 models (any input shape), in Table 1's order.
MODELS = tuple(r.name for r in RECORDS.values() if r.paper and r.dataset == "cifar10")
PAPER_PARAM_COUNTS = {r.name: r.paper_params for r in RECORDS.values() if r.paper_params}
# The paper's initial learning rates (its models only: a model of ours has its own default,
# engine.members.default_learning_rate, not "the paper's").
PAPER_LEARNING_RATES = {r.name: r.learning_rate for r in RECORDS.values() if r.paper}


COMPUTE_DTYPES = ("float32", "bfloat16")


def check_dropout(name: str, dropout_rate: float) -> None:
  """The dropout rule: a rate in [0, 1), and none for a model without dropout layers."""
  require(0 <= dropout_rate < 1, f"dropout_rate: {dropout_rate} must be in [0, 1)")
  require(dropout_rate == 0 or record(name).dropout,
          f"dropout_rate: {name} has no dropout layers; allowed: 0")


def check_config(c) -> None:
  """The model fields: which network, its layers' implementation and precision, dropout and
  batch-norm (UserError, one line)."""
  one_of("model", c.model, NAMES)
  one_of("layer_impl", c.layer_impl, LAYER_IMPLS)
  one_of("compute_dtype", c.compute_dtype, COMPUTE_DTYPES)
  check_dropout(c.model, c.dropout_rate)
  require(0 < c.bn_momentum < 1, f"bn_momentum: {c.bn_momentum} must be in (0, 1)")
  require(c.bn_epsilon > 0, f"bn_epsilon: {c.bn_epsilon} must be > 0")


def register(r: ModelRecord) -> None:
  """Adds model `r.name` (usable as `model=` from then on)."""
  global NAMES
  if r.name in RECORDS:
    raise ValueError(f"model {r.name!r} exists already")
  RECORDS[r.name] = r
  NAMES = tuple(RECORDS)


def record(name: str) -> ModelRecord:
  if name not in RECORDS:
    raise unknown_name("model", name, NAMES)
  return RECORDS[name]


def build(name: str, num_classes: int = 10, *, dropout_rate: float = 0.0,
          bn_momentum: float = defaults.BN_MOMENTUM, bn_epsilon: float = defaults.BN_EPSILON,
          dtype=jnp.float32,
          layer_impl: str | None = "xla", conv: str = "xla") -> nn.Module:
  """The model `name` (one of NAMES); works for any NHWC input shape. `layer_impl`: the
  max-pool / LRN formulation (models/layers.py; resolved already, not `auto`), ignored by
  models without such layers; `conv`: how its convolutions run under vmap over members
  (models/member_conv.py: the member strategy decides), ignored by models that do not take
  it (assemble refuses a strategy that needs it for them)."""
  r = record(name)
  kwargs = {"num_classes": num_classes, "dtype": dtype}
  if r.layer_impl:
    kwargs["layer_impl"] = layer_impl
  if conv not in member_conv.CONV_FORMS:
    raise unknown_name("conv", conv, member_conv.CONV_FORMS)
  if r.member_conv:
    kwargs["conv"] = conv
  if r.batch_norm:
    kwargs.update(bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
  check_dropout(name, dropout_rate)
  if r.dropout:
    kwargs["dropout_rate"] = dropout_rate
  return r.make(**kwargs)


def from_config(config, num_classes: int, conv: str = "xla") -> nn.Module:
  """The model a run's config (a ConfigDict or its saved dict) trains: the one place where
  config fields become a model (its model section only: models/defaults.py; a field absent
  from an older run's config takes its default); `layer_impl=auto` is
  resolved for this process's platform (layer_impl_for); `conv`: the member strategy's
  convolution formulation (engine/strategies.Strategy.conv_form)."""
  c = SECTION.of(config)
  return build(c.model, num_classes, dropout_rate=c.dropout_rate, bn_momentum=c.bn_momentum,
               bn_epsilon=c.bn_epsilon, dtype=jnp.dtype(c.compute_dtype),
               layer_impl=layer_impl_for(c.model, c.layer_impl), conv=conv)


def layer_impl_for(name: str, layer_impl: str) -> str | None:
  """The max-pool / LRN formulation model `name` runs with here (None: it has no such
  layers); `auto` resolved for the default backend's platform (models/layers.py)."""
  if not record(name).layer_impl:
    return None
  return layers.resolve(layer_impl, jax.default_backend())


def count_params(params) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))


def param_count(name: str, input_shape=(28, 28, 3), num_classes: int = 10) -> int:
  """Trainable parameters of model `name` for one input shape, without running it."""
  model = build(name, num_classes)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *input_shape)))
  return count_params(shapes["params"])


__all__ = ["LAYER_IMPLS", "MODELS", "NAMES", "PAPER_LEARNING_RATES",
           "PAPER_PARAM_COUNTS", "RECORDS", "REFERENCE_TRAINABLE_PARAMS", "SECTION", "ModelRecord",
           "build",
           "count_params", "from_config", "layer_impl_for",
           "local_response_normalization", "param_count", "record", "register"]
