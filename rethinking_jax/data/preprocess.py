"""The paper's CIFAR10 preprocessing as jittable batch functions (run on the device).

/255 -> crop 28x28 (center at test time, random for "random crop") -> per-image whitening
`(x - mean) / max(std, 1/sqrt(N))` (TF's per_image_standardization). "Augment" adds a
horizontal flip and brightness/contrast jitter (TF's CIFAR10 tutorial distortions).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

BRIGHTNESS_MAX_DELTA = 63.0 / 255.0
CONTRAST_RANGE = (0.2, 1.8)


def crop_size_for(image_shape, crop: int) -> int | None:
  """The crop that applies to images of `image_shape`: none when they are not larger."""
  height, width = image_shape[:2]
  if not crop or min(height, width) <= crop:
    return None
  return crop


def cropped_shape(image_shape, crop: int) -> tuple[int, int, int]:
  size = crop_size_for(image_shape, crop)
  return tuple(image_shape) if size is None else (size, size, image_shape[2])


def to_unit(images_u8: jax.Array) -> jax.Array:
  return images_u8.astype(jnp.float32) / 255.0


def center_crop(x: jax.Array, size: int | None) -> jax.Array:
  """[B,H,W,C] -> [B,size,size,C] around the center (rows/cols 2:30 for 32 -> 28)."""
  if size is None:
    return x
  top, left = (x.shape[1] - size) // 2, (x.shape[2] - size) // 2
  return x[:, top:top + size, left:left + size, :]


def random_crop(key: jax.Array, x: jax.Array, size: int | None) -> jax.Array:
  """A uniformly random size x size window per image."""
  if size is None:
    return x
  batch, height, width, channels = x.shape
  k_top, k_left = jax.random.split(key)
  tops = jax.random.randint(k_top, (batch,), 0, height - size + 1)
  lefts = jax.random.randint(k_left, (batch,), 0, width - size + 1)
  crop_one = lambda img, top, left: jax.lax.dynamic_slice(img, (top, left, 0),
                                                         (size, size, channels))
  return jax.vmap(crop_one)(x, tops, lefts)


def random_flip(key: jax.Array, x: jax.Array) -> jax.Array:
  """Horizontal flip of each image with probability 1/2."""
  flip = jax.random.bernoulli(key, 0.5, (x.shape[0], 1, 1, 1))
  return jnp.where(flip, x[:, :, ::-1, :], x)


def random_brightness_contrast(key: jax.Array, x: jax.Array,
                               max_delta: float = BRIGHTNESS_MAX_DELTA,
                               contrast_range=CONTRAST_RANGE) -> jax.Array:
  """TF's random_brightness then random_contrast (per image, per-channel mean kept)."""
  k_b, k_c = jax.random.split(key)
  batch = x.shape[0]
  delta = jax.random.uniform(k_b, (batch, 1, 1, 1), minval=-max_delta, maxval=max_delta)
  x = x + delta
  factor = jax.random.uniform(k_c, (batch, 1, 1, 1), minval=contrast_range[0],
                              maxval=contrast_range[1])
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  return (x - mean) * factor + mean


def whiten(x: jax.Array) -> jax.Array:
  """Per-image standardization: (x - mean) / max(std, 1/sqrt(N)), N = H*W*C."""
  n = np.prod(x.shape[1:])
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  std = jnp.std(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) / jnp.maximum(std, 1.0 / np.sqrt(n))


def channel_stats(images_u8: np.ndarray, crop: int) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and std of the center-cropped [0,1] images (host, float64)."""
  size = crop_size_for(images_u8.shape[1:], crop)
  if size is not None:
    top, left = (images_u8.shape[1] - size) // 2, (images_u8.shape[2] - size) // 2
    images_u8 = images_u8[:, top:top + size, left:left + size, :]
  channels = images_u8.shape[-1]
  flat = images_u8.reshape(-1, channels)
  total = flat.shape[0]
  s1 = flat.sum(axis=0, dtype=np.float64)
  s2 = np.einsum("nc,nc->c", flat.astype(np.float64), flat.astype(np.float64))
  mean = s1 / total
  std = np.sqrt(np.maximum(s2 / total - mean**2, 0.0))
  return (mean / 255.0).astype(np.float32), (std / 255.0).astype(np.float32)
