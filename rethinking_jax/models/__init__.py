"""The paper's CIFAR10 architectures, built by name through one registry."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rethinking_jax.errors import UserError, unknown_name
from rethinking_jax.models.alexnet import AlexNetSmall, local_response_normalization
from rethinking_jax.models.inception import InceptionSmall
from rethinking_jax.models.inception_v3 import REFERENCE_TRAINABLE_PARAMS, InceptionV3
from rethinking_jax.models.mlp import MLP

_REGISTRY = {
    "mlp_1x512": functools.partial(MLP, hidden=(512,)),
    "mlp_3x512": functools.partial(MLP, hidden=(512, 512, 512)),
    "alexnet_small": AlexNetSmall,
    "inception_small": functools.partial(InceptionSmall, batch_norm=True),
    "inception_small_nobn": functools.partial(InceptionSmall, batch_norm=False),
}
MODELS = tuple(_REGISTRY)  # the CIFAR10 models (any input shape)
# ImageNet (Table 2): Inception V3 needs inputs of at least 75x75 (299x299 in the paper).
IMAGENET_MODELS = ("inception_v3",)
_REGISTRY["inception_v3"] = InceptionV3
# Table 1's counts for 28x28x3 inputs and 10 classes (batch-norm statistics not counted).
PAPER_PARAM_COUNTS = {"mlp_1x512": 1_209_866, "mlp_3x512": 1_735_178,
                      "alexnet_small": 1_387_786, "inception_small": 1_649_402,
                      "inception_small_nobn": 1_649_402}
# The paper's initial learning rates (0.1 for Inception, 0.01 for the others).
PAPER_LEARNING_RATES = {"mlp_1x512": 0.01, "mlp_3x512": 0.01, "alexnet_small": 0.01,
                        "inception_small": 0.1, "inception_small_nobn": 0.1,
                        "inception_v3": 0.1}
# The smallest input side a model accepts (its stride-2 VALID stem needs 75 for Inception V3).
MIN_INPUT_SIZE = {"inception_v3": 75}


def has_batch_norm(name: str) -> bool:
  return name in ("inception_small", "inception_v3")


def build(name: str, num_classes: int = 10, *, dropout_rate: float = 0.0,
          bn_momentum: float = 0.999, bn_epsilon: float = 1e-3, dtype=jnp.float32) -> nn.Module:
  """The model `name` (one of MODELS); works for any NHWC input shape."""
  if name not in _REGISTRY:
    raise unknown_name("model", name, MODELS + IMAGENET_MODELS)
  kwargs = {"num_classes": num_classes, "dtype": dtype}
  if name == "inception_v3":
    kwargs.update(bn_momentum=bn_momentum, bn_epsilon=bn_epsilon, dropout_rate=dropout_rate)
  elif name.startswith("inception"):
    kwargs.update(bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
    if dropout_rate:
      raise UserError(f"dropout_rate: {name} has no dropout layers; allowed: 0 (got "
                      f"{dropout_rate})")
  else:
    kwargs["dropout_rate"] = dropout_rate
  return _REGISTRY[name](**kwargs)


def from_config(config, num_classes: int) -> nn.Module:
  """The model a run's config (a ConfigDict or its saved dict) trains: the one place where
  config fields become a model. Fields absent from an older run's config take the defaults
  of rethinking_jax.base_config (the behaviour before they existed)."""
  from rethinking_jax import base_config

  defaults = base_config.get_config()
  get = lambda key: config.get(key, defaults[key])
  return build(get("model"), num_classes, dropout_rate=get("dropout_rate"),
               bn_momentum=get("bn_momentum"), bn_epsilon=get("bn_epsilon"),
               dtype=jnp.dtype(get("compute_dtype")))


def count_params(params) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))


def param_count(name: str, input_shape=(28, 28, 3), num_classes: int = 10) -> int:
  """Trainable parameters of model `name` for one input shape, without running it."""
  model = build(name, num_classes)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *input_shape)))
  return count_params(shapes["params"])


__all__ = ["IMAGENET_MODELS", "MIN_INPUT_SIZE", "MODELS", "PAPER_LEARNING_RATES",
           "PAPER_PARAM_COUNTS", "REFERENCE_TRAINABLE_PARAMS", "build", "count_params",
           "from_config",
           "has_batch_norm", "local_response_normalization", "param_count"]
