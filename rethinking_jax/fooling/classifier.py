"""A trained member as a classifier of [0,1] pixel images (preprocessing included)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rethinking_jax import checkpoints, data
from rethinking_jax.data import preprocess


@dataclasses.dataclass(frozen=True)
class Classifier:
  """logits(x) for images x [B,h,w,C] in [0,1] (already cropped); whitening is inside."""

  logits: Callable[[jax.Array], jax.Array]
  label: str
  input_shape: tuple[int, int, int]
  num_classes: int

  def probs(self, x):
    return jax.nn.softmax(self.logits(x), axis=-1)


def from_workdir(workdir: str, member: int) -> Classifier:
  restored = checkpoints.restore_member(workdir, member)
  variables = {"params": restored["params"]}
  if restored["batch_stats"]:
    variables["batch_stats"] = restored["batch_stats"]
  variables = jax.tree.map(jnp.asarray, variables)
  model = restored["model"]

  def logits(x):
    return model.apply(variables, preprocess.whiten(x)).astype(jnp.float32)

  out = jax.eval_shape(logits, jnp.zeros((1, *restored["input_shape"])))
  return Classifier(jax.jit(logits), restored["label"], tuple(restored["input_shape"]),
                    int(out.shape[-1]))


def images_of_workdir(workdir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(train mean image, test images, test labels) of the run's dataset, cropped, in [0,1]."""
  import json
  import os

  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  ds = data.load(config["dataset"], data_dir=config.get("data_dir") or None,
                 synthetic_shape=tuple(config.get("synthetic_shape", (32, 32, 3))),
                 synthetic_train=config.get("synthetic_train", 1024),
                 synthetic_test=config.get("synthetic_test", 256))
  crop = preprocess.crop_size_for(ds.image_shape, config.get("crop_size", 28))
  unit = lambda u8: np.asarray(preprocess.center_crop(preprocess.to_unit(jnp.asarray(u8)), crop))
  return unit(ds.train_images).mean(axis=0), unit(ds.test_images), ds.test_labels
