"""Datasets (host numpy), on-device preprocessing and the paper's randomization tests."""

from __future__ import annotations

from rethinking_jax.data.cifar_archive import load_cifar10_archive
from rethinking_jax.data.dataset import Dataset, subset_indices
from rethinking_jax.data.digits import load_digits
from rethinking_jax.data.image_folder import load_image_folder
from rethinking_jax.data.synthetic import load_synthetic
from rethinking_jax.data.tfds_source import load_tfds
from rethinking_jax.errors import unknown_name

# imagenet2012 does not fit in memory: it is only streamed (data/stream.py); the others are
# loaded whole, and may be streamed too.
STREAMED_DATASETS = ("imagenet2012",)
TFDS_DATASETS = ("cifar10", "mnist", *STREAMED_DATASETS)
DATASETS = ("cifar10", "mnist", "cifar10_archive", "image_folder", "digits", "synthetic",
            *STREAMED_DATASETS)


def load(name: str, data_dir: str | None = None, tfds_reader: str = "auto",
         synthetic_shape=(32, 32, 3), synthetic_train: int = 1024,
         synthetic_test: int = 256, synthetic_seed: int = 0, class_order: str = "",
         cache_dir: str = "") -> Dataset:
  """Loads dataset `name` (one of DATASETS) into host memory."""
  if name in ("cifar10", "mnist"):
    return load_tfds(name, data_dir, reader=tfds_reader)
  if name == "cifar10_archive":
    return load_cifar10_archive(data_dir or "")
  if name == "image_folder":
    return load_image_folder(data_dir or "", class_order or None, cache_dir or None)
  if name == "digits":
    return load_digits()
  if name == "synthetic":
    return load_synthetic(synthetic_train, synthetic_test, tuple(synthetic_shape),
                          seed=synthetic_seed)
  raise unknown_name("dataset", name, DATASETS)


__all__ = ["DATASETS", "STREAMED_DATASETS", "TFDS_DATASETS", "Dataset", "load",
           "subset_indices"]
