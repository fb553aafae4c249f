"""Featurizers for the kernel experiment: random convolutional features (Gaussian filters, or
the Coates-Ng random-patch recipe of KeystoneML's RandomPatchCifar) and Gabor wavelets."""

from __future__ import annotations

import functools

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


def _pool(x, grid: int, reduce=jnp.mean):
  """Average (or `reduce`) over a grid x grid partition of the spatial positions:
  [N, grid*grid*F]."""
  n, h, w, f = x.shape
  rows = np.array_split(np.arange(h), grid)
  cols = np.array_split(np.arange(w), grid)
  parts = [reduce(x[:, r[0]:r[-1] + 1, c[0]:c[-1] + 1, :], axis=(1, 2))
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


# The Coates-Ng single-layer recipe as a co-author's lab ran it on CIFAR-10 (KeystoneML's
# RandomPatchCifar, Recht's AMPLab): random training patches as filters, contrast-normalised
# and ZCA-whitened, a symmetric rectifier, sum pooling into quadrants.
PATCH_CONTRAST_EPS = 10.0  # added to a patch's variance (pixels on the 0..255 scale)
PATCH_ZCA_EPS = 0.1
PATCH_ALPHA = 0.25         # the rectifier's threshold


def _patches(images: jax.Array, size: int) -> jax.Array:
  """[B,H,W,C] float -> [B,H-size+1,W-size+1,C*size*size] every stride-1 patch."""
  return jax.lax.conv_general_dilated_patches(images, (size, size), (1, 1), "VALID",
                                              dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _contrast_normalised(p: jax.Array) -> jax.Array:
  """Each patch (last axis) minus its mean, over sqrt(its variance + PATCH_CONTRAST_EPS)."""
  p = p - jnp.mean(p, axis=-1, keepdims=True)
  return p / jnp.sqrt(jnp.mean(p * p, axis=-1, keepdims=True) + PATCH_CONTRAST_EPS)


def patch_filters(images_u8: np.ndarray, num_filters: int, size: int = 6, seed: int = 0):
  """(filters [P, F], ZCA mean [P], ZCA matrix [P, P]) from `num_filters` patches drawn at
  random positions of random training images: contrast-normalised, the whitening fitted on
  them (eps PATCH_ZCA_EPS), whitened, scaled to unit norm."""
  rng = np.random.default_rng(seed)
  n, h, w, _ = images_u8.shape
  which = rng.integers(0, n, num_filters)
  rows, cols = rng.integers(0, h - size + 1, num_filters), rng.integers(0, w - size + 1,
                                                                        num_filters)
  picked = np.stack([images_u8[i, r:r + size, c:c + size] for i, r, c in
                     zip(which, rows, cols, strict=True)]).astype(np.float32)
  p = np.asarray(_contrast_normalised(_patches(jnp.asarray(picked), size)[:, 0, 0]),
                 np.float64)
  mean = p.mean(axis=0)
  eigenvalues, vectors = np.linalg.eigh(np.cov(p - mean, rowvar=False))
  zca = (vectors / np.sqrt(np.maximum(eigenvalues, 0.0) + PATCH_ZCA_EPS)) @ vectors.T
  filters = (p - mean) @ zca
  filters /= np.linalg.norm(filters, axis=1, keepdims=True)
  return filters.T.astype(np.float32), mean.astype(np.float32), zca.astype(np.float32)


@functools.partial(jax.jit, static_argnums=4)
def patch_responses(images, filters, mean, zca, size: int):
  """[B, 4 * 2F]: per 2x2 quadrant (row-major), the sums of max(0, y - a) for the F filters,
  then of max(0, -y - a); y: each whitened, contrast-normalised patch against each filter."""
  p = _contrast_normalised(_patches(images.astype(jnp.float32), size))
  y = (p - mean) @ (zca @ filters)
  rectified = jnp.concatenate([jax.nn.relu(y - PATCH_ALPHA), jax.nn.relu(-y - PATCH_ALPHA)],
                              axis=-1)
  return _pool(rectified, 2, jnp.sum)


class PatchFeatureBlocks:
  """The random-patch features of both splits, one block of filters at a time: block(b) is
  (train [N, 8 f], test [M, 8 f]) for filters b*filter_batch ... (b+1)*filter_batch - 1,
  each feature standardised by its mean and deviation on the training images. A feature
  depends only on its own filter, so the blocks side by side are the whole map
  (random_patch_features), and a linear Gram matrix is their sum of products (gram_stream):
  50,000 images x 256,000 features (51 GB) never need to exist at once."""

  def __init__(self, train_u8: np.ndarray, test_u8: np.ndarray, num_filters: int,
               size: int = 6, seed: int = 0, batch: int = 128, filter_batch: int = 512):
    self.filters, mean, zca = patch_filters(train_u8, num_filters, size, seed)
    self.mean, self.zca = jnp.asarray(mean), jnp.asarray(zca)
    self.train_u8, self.test_u8, self.size = train_u8, test_u8, size
    self.batch, self.filter_batch = batch, filter_batch
    self.num_blocks = -(-num_filters // filter_batch)

  def _responses(self, images, filters, stop) -> np.ndarray | None:
    out = np.empty((len(images), 8 * filters.shape[1]), np.float32)
    for i in range(0, len(images), self.batch):
      if stop():
        return None
      # 4 quadrants x (f positive, f negative): the columns of this block
      out[i:i + self.batch] = np.asarray(patch_responses(
          jnp.asarray(images[i:i + self.batch]), filters, self.mean, self.zca, self.size))
    return out

  def block(self, b: int, stop=lambda: False) -> tuple[np.ndarray, np.ndarray] | None:
    """Block b's standardised (train, test) features; None where `stop()` turned true on
    the way (checked between image batches)."""
    filters = jnp.asarray(self.filters[:, b * self.filter_batch:(b + 1) * self.filter_batch])
    train = self._responses(self.train_u8, filters, stop)
    test = None if train is None else self._responses(self.test_u8, filters, stop)
    if test is None:
      return None
    for c in range(0, train.shape[1], 1024):  # in place, a column block at a time (memory)
      cols = train[:, c:c + 1024].astype(np.float64)
      mu, sd = cols.mean(axis=0), cols.std(axis=0) + 1e-8
      for x in (train, test):
        x[:, c:c + 1024] = ((x[:, c:c + 1024] - mu) / sd).astype(np.float32)
    return train, test


def random_patch_features(train_u8: np.ndarray, test_u8: np.ndarray, num_filters: int,
                          size: int = 6, seed: int = 0, batch: int = 128,
                          filter_batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
  """(train, test) features [N, 8 F]: every stride-1 patch contrast-normalised and whitened
  as the filters were, correlated with the F filters, split by the symmetric rectifier
  (max(0, x - a), max(0, -x - a)), summed over the 2x2 quadrants of the positions; then each
  feature standardised by its mean and deviation on the training images. The whole map in
  memory: PatchFeatureBlocks side by side."""
  blocks = PatchFeatureBlocks(train_u8, test_u8, num_filters, size, seed, batch, filter_batch)
  parts = [blocks.block(b) for b in range(blocks.num_blocks)]
  return (np.concatenate([p[0] for p in parts], axis=1),
          np.concatenate([p[1] for p in parts], axis=1))
