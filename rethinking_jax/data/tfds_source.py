"""CIFAR10 / MNIST / ImageNet through TensorFlow Datasets.

The default reader is `tfds.data_source` (ArrayRecord, random access, no TensorFlow). When a
dataset was prepared in TFRecord format and TensorFlow is installed (the `tf` extra),
`tfds.load(..., batch_size=-1)` reads it instead.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from rethinking_jax.base.errors import UserError
from rethinking_jax.data.dataset import Dataset

READERS = ("auto", "data_source", "tf")
PREPARE_HINT = "python scripts/prepare_data.py {name} --data_dir={data_dir}"
# tfds cannot download these: it builds them from archives the user puts in a manual dir.
MANUAL_HINT = {"imagenet2012": " --manual_dir=DIR_WITH_ILSVRC2012_img_train_and_val_tars"}


# The offline routes to the same data, for a user without the network or TensorFlow.
OFFLINE_HINT = {
    "cifar10": ("; or offline, without tfds: --config.dataset=image_folder "
                "--config.data_dir=PATH/cifar10-jpeg.tar.gz --config.class_order=cifar10 (any "
                "<split>/<class>/<image> folder or archive), or --config.dataset=cifar10_archive "
                "--config.data_dir=PATH/cifar-10-python.tar.gz (the official release)"),
    "mnist": ("; or offline, without tfds: --config.dataset=image_folder "
              "--config.data_dir=PATH (a <split>/<class>/<image> folder or archive)"),
    "imagenet2012": ("; or a directory of train/ and val/ class folders: "
                     "--config.dataset=image_folder --config.data_dir=DIR"),
}


def prepare_hint(name: str, data_dir: str) -> str:
  return (PREPARE_HINT.format(name=name, data_dir=data_dir) + MANUAL_HINT.get(name, "")
          + " (needs the tf extra and the network)" + OFFLINE_HINT.get(name, ""))


def default_data_dir() -> str:
  return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def _read_data_source(name: str, split: str, data_dir: str | None):
  import tensorflow_datasets as tfds

  source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  n = len(source)
  first = source[0]
  images = np.empty((n, *np.shape(first["image"])), np.uint8)
  labels = np.empty((n,), np.int32)
  # Items one by one: works for every ArrayRecord source, including tfds.testing.mock_data.
  for i in range(n):
    item = first if i == 0 else source[i]
    images[i] = item["image"]
    labels[i] = item["label"]
  return images, labels


def _read_tf(name: str, split: str, data_dir: str | None):
  import tensorflow_datasets as tfds

  ds = tfds.load(name, split=split, data_dir=data_dir, batch_size=-1, as_supervised=True,
                 download=False)
  images, labels = tfds.as_numpy(ds)
  return images.astype(np.uint8), labels.astype(np.int32)


def tensorflow_available() -> bool:
  return importlib.util.find_spec("tensorflow") is not None


def load_tfds(name: str, data_dir: str | None = None, reader: str = "auto",
              train_split: str = "train", test_split: str = "test") -> Dataset:
  """Loads a prepared tfds image-classification dataset into host memory."""
  import tensorflow_datasets as tfds

  if reader not in READERS:
    raise UserError(f"tfds_reader: unknown value {reader!r}; allowed: {', '.join(READERS)}")
  data_dir = data_dir or None
  where = data_dir or default_data_dir()
  splits = {}
  for split in (train_split, test_split):
    try:
      if reader == "tf":
        splits[split] = _read_tf(name, split, data_dir)
      else:
        splits[split] = _read_data_source(name, split, data_dir)
    except Exception as err:  # tfds raises many types here; sort them out below.
      builder = tfds.builder(name, data_dir=data_dir)
      if not builder.is_prepared():
        raise UserError(
            f"dataset {name!r} not found in {where} (set TFDS_DATA_DIR or --config.data_dir); "
            f"prepare it with: {prepare_hint(name, where)}") from err
      if reader == "auto" and tensorflow_available():
        splits[split] = _read_tf(name, split, data_dir)
      elif reader == "tf":
        raise
      else:
        raise UserError(
            f"dataset {name!r} in {where} is in {builder.info.file_format} format, which "
            "needs TensorFlow: pip install -e '.[tf]', or re-prepare it as ArrayRecord with: "
            f"{prepare_hint(name, where)}") from err
  info_classes = tfds.builder(name, data_dir=data_dir).info.features["label"].num_classes
  return Dataset(name, *splits[train_split], *splits[test_split], num_classes=info_classes)
