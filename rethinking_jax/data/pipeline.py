"""From uint8 images on the device to a member's model inputs, inside the compiled program.

crop (center, or random for training with random_crop / augment) -> the member's input
randomization -> flip + brightness/contrast (augment, training only) -> per-image whitening.
"""

from __future__ import annotations

import jax

from rethinking_jax.data import preprocess, randomize

TRANSFORMS = ("center_crop", "random_crop", "augment")


def model_inputs(images_u8: jax.Array, index: jax.Array, *, kind, member_key: jax.Array,
                 split: str, mean, std, crop: int | None, transform: str, train: bool,
                 augment_key: jax.Array | None = None,
                 kinds_present=None) -> jax.Array:
  """Model inputs [B,h,w,C] float32 for images_u8 [B,H,W,C] at dataset positions `index`."""
  x = preprocess.to_unit(images_u8)
  augmenting = train and transform != "center_crop"
  if augmenting:
    k_crop, k_flip, k_jitter = jax.random.split(augment_key, 3)
    x = preprocess.random_crop(k_crop, x, crop)
  else:
    x = preprocess.center_crop(x, crop)
  x = randomize.randomize_inputs(x, index, kind, member_key, split, mean, std, kinds_present)
  if augmenting and transform == "augment":
    x = preprocess.random_flip(k_flip, x)
    x = preprocess.random_brightness_contrast(k_jitter, x)
  return preprocess.whiten(x)
