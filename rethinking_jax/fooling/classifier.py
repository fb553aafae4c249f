"""A trained member as a classifier of [0,1] pixel images (preprocessing included)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rethinking_jax.data import preprocess
from rethinking_jax.engine import checkpoints


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
  """(train mean image, test images, test labels) of the run's dataset, cropped, in [0,1].

  The dataset is loaded exactly as the run loaded it (data.load_dataset on its config.json).
  """
  import json
  import os

  import ml_collections

  from rethinking_jax import data

  with open(os.path.join(workdir, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  ds = data.load_dataset(config)
  crop = preprocess.crop_size_for(ds.image_shape, config.crop_size)
  unit = lambda u8: np.asarray(preprocess.center_crop(preprocess.to_unit(jnp.asarray(u8)), crop))
  return unit(ds.train_images).mean(axis=0), unit(ds.test_images), ds.test_labels
