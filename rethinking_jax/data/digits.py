"""scikit-learn's bundled 8x8 handwritten digits: the embedded offline dataset (1,797 images)."""

import numpy as np

from rethinking_jax.data.dataset import Dataset

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits() -> Dataset:
  """Real 8x8 digits, a fixed stratified split (1,437 train / 360 test), uint8 in [0, 255]."""
  from sklearn.datasets import load_digits as sk_load_digits
  from sklearn.model_selection import train_test_split

  bunch = sk_load_digits()
  # Pixel values are integers 0..16; map them onto the uint8 range like any image.
  images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  labels = bunch.target.astype(np.int32)
  idx_train, idx_test = train_test_split(
      np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels,
      random_state=SPLIT_SEED)
  idx_train, idx_test = np.sort(idx_train), np.sort(idx_test)
  return Dataset("digits", images[idx_train], labels[idx_train], images[idx_test],
                 labels[idx_test], num_classes=10)
