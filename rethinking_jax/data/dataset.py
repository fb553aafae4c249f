"""The in-memory dataset every source returns: uint8 images and int32 labels, host numpy."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Train and test splits as numpy arrays: images uint8 [N,H,W,C], labels int32 [N]."""

  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int

  def __post_init__(self):
    for split in ("train", "test"):
      images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
      if images.dtype != np.uint8 or images.ndim != 4:
        raise TypeError(f"{self.name}: {split}_images must be uint8 [N,H,W,C], got "
                        f"{images.dtype} {images.shape}")
      if labels.dtype != np.int32 or labels.shape != images.shape[:1]:
        raise TypeError(f"{self.name}: {split}_labels must be int32 [N], got "
                        f"{labels.dtype} {labels.shape}")
    if self.train_images.shape[1:] != self.test_images.shape[1:]:
      raise TypeError(f"{self.name}: train and test image shapes differ")

  @property
  def num_train(self) -> int:
    return int(self.train_images.shape[0])

  @property
  def num_test(self) -> int:
    return int(self.test_images.shape[0])

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.train_images.shape[1:])

  def with_classes(self, num_classes: int) -> Dataset:
    """The same images with the labels folded to `num_classes` classes (label mod K): with
    random labels, K = 2 is the uniform +-1 labelling of an empirical Rademacher estimate
    (the paper's section 2.2)."""
    if not num_classes or num_classes == self.num_classes:
      return self
    return dataclasses.replace(
        self, train_labels=(self.train_labels % num_classes).astype(np.int32),
        test_labels=(self.test_labels % num_classes).astype(np.int32), num_classes=num_classes)

  def close(self) -> None:
    """Nothing to release (a StreamedDataset's counterpart stops its reader threads)."""

  def subset(self, num_train: int = 0, num_test: int = 0) -> Dataset:
    """A fixed random `num_train` / `num_test` examples of each split (0 keeps it whole)."""
    tr = subset_indices(self.num_train, num_train)
    te = subset_indices(self.num_test, num_test)
    return dataclasses.replace(
        self, train_images=self.train_images[tr], train_labels=self.train_labels[tr],
        test_images=self.test_images[te], test_labels=self.test_labels[te])


SUBSET_SEED = 0


def subset_indices(total: int, n: int, seed: int = SUBSET_SEED) -> np.ndarray:
  """`n` of `total` example positions (all when n is 0 or >= total), drawn once with a fixed
  seed and kept in order.

  Not the first n: image folders list their examples class by class, so the first 10,000
  CIFAR-10 images would be airplanes and automobiles only. The same in every run.
  """
  if not n or n >= total:
    return np.arange(total)
  return np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
