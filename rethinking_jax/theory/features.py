"""Featurizers for the kernel experiment: random convolutional features and Gabor wavelets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rethinking_jax.data import preprocess


def images_to_unit(images_u8: np.ndarray, crop: int = 0) -> np.ndarray:
  """uint8 [N,H,W,C] -> float32 [0,1], center-cropped (crop 0 = none)."""
  x = preprocess.to_unit(jnp.asarray(images_u8))
  return np.asarray(preprocess.center_crop(x, preprocess.crop_size_for(images_u8.shape[1:],
                                                                        crop)))


def whitened_pixels(images_u8: np.ndarray, crop: int = 28) -> np.ndarray:
  """The networks' preprocessing (crop, per-image whitening), flattened: [N, D]."""
  x = preprocess.whiten(jnp.asarray(images_to_unit(images_u8, crop)))
  return np.asarray(x).reshape(len(images_u8), -1)


def _pool(x, grid: int):
  """Average over a grid x grid partition of the spatial positions: [N, grid*grid*F]."""
  n, h, w, f = x.shape
  rows = np.array_split(np.arange(h), grid)
  cols = np.array_split(np.arange(w), grid)
  parts = [jnp.mean(x[:, r[0]:r[-1] + 1, c[0]:c[-1] + 1, :], axis=(1, 2))
           for r in rows for c in cols]
  return jnp.concatenate(parts, axis=-1)


def random_conv_features(images: np.ndarray, num_filters: int = 1024, size: int = 5,
                         pool_grid: int = 2, seed: int = 0, batch: int = 256,
                         filter_batch: int = 4096) -> np.ndarray:
  """Features of a one-layer random conv net: Gaussian filters (unit norm), ReLU, grid
  average pooling. images: float [N,H,W,C] (whitened). Returns float32 [N, grid^2 * F].

  Filters are processed `filter_batch` at a time and images `batch` at a time, so 32,000
  filters fit in memory."""
  channels = images.shape[-1]
  key = jax.random.key(seed)

  @jax.jit
  def featurize(x, filters):
    y = jax.lax.conv_general_dilated(x, filters, (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return _pool(jax.nn.relu(y), pool_grid)

  chunks = []
  for f0 in range(0, num_filters, filter_batch):
    count = min(filter_batch, num_filters - f0)
    filters = jax.random.normal(jax.random.fold_in(key, f0), (size, size, channels, count))
    filters = filters / jnp.sqrt(jnp.sum(filters**2, axis=(0, 1, 2), keepdims=True))
    chunks.append(np.concatenate([np.asarray(featurize(jnp.asarray(images[i:i + batch]),
                                                        filters))
                                  for i in range(0, len(images), batch)]))
  return np.concatenate(chunks, axis=1).astype(np.float32)


def gabor_bank(size: int = 9, orientations: int = 8, wavelengths=(3.0, 6.0)) -> np.ndarray:
  """Complex Gabor filters [size, size, 1, 2*K] (real parts, then imaginary parts)."""
  half = size // 2
  yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
  real, imag = [], []
  for lam in wavelengths:
    sigma = 0.56 * lam
    for k in range(orientations):
      theta = np.pi * k / orientations
      xr = xx * np.cos(theta) + yy * np.sin(theta)
      envelope = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
      real.append(envelope * np.cos(2 * np.pi * xr / lam))
      imag.append(envelope * np.sin(2 * np.pi * xr / lam))
  real = [r - r.mean() for r in real]  # zero-mean: no response to constant regions
  bank = np.stack(real + imag, axis=-1)[:, :, None, :]
  return (bank / np.sqrt(np.sum(bank**2, axis=(0, 1, 2), keepdims=True))).astype(np.float32)


def gabor_features(images: np.ndarray, pool_grid: int = 4, batch: int = 512, **bank_kwargs):
  """Modulus of complex Gabor responses, grid-pooled, plus the pooled pixels: [N, D].

  images: float [N,H,W,1] in [0,1] (MNIST)."""
  bank = jnp.asarray(gabor_bank(**bank_kwargs))
  k = bank.shape[-1] // 2

  @jax.jit
  def featurize(x):
    y = jax.lax.conv_general_dilated(x, bank, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    modulus = jnp.sqrt(y[..., :k] ** 2 + y[..., k:] ** 2)
    return jnp.concatenate([_pool(modulus, pool_grid), _pool(x, pool_grid)], axis=-1)

  return np.concatenate([np.asarray(featurize(jnp.asarray(images[i:i + batch])))
                         for i in range(0, len(images), batch)]).astype(np.float32)
