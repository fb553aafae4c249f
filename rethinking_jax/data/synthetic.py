"""Class-structured random images: true labels are learnable, random labels are not."""

import numpy as np

from rethinking_jax.data.dataset import Dataset


def load_synthetic(num_train: int = 1024, num_test: int = 256, image_shape=(32, 32, 3),
                   num_classes: int = 10, seed: int = 0, noise: float = 48.0) -> Dataset:
  """Each class is a random prototype image; an example is its prototype plus pixel noise.

  Labels are balanced (example i has class i mod num_classes, then shuffled). The noise level
  keeps classes separable yet makes every image distinct, so memorizing random labels needs
  real capacity.
  """
  rng = np.random.default_rng(seed)
  prototypes = rng.uniform(40, 215, size=(num_classes, *image_shape))

  def split(n):
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int32)
    images = prototypes[labels] + rng.normal(0.0, noise, size=(n, *image_shape))
    return np.clip(np.round(images), 0, 255).astype(np.uint8), labels

  train_images, train_labels = split(num_train)
  test_images, test_labels = split(num_test)
  return Dataset("synthetic", train_images, train_labels, test_images, test_labels,
                 num_classes)
