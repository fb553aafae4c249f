import jax
import jax.numpy as jnp
import numpy as np

from rethinking_jax.data import preprocess


def test_whiten_matches_formula_with_floor():
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(3, 28, 28, 3)).astype(np.float32)
  x[1] = 0.25  # a constant image: std 0 -> floored at 1/sqrt(N)
  got = np.asarray(preprocess.whiten(jnp.asarray(x)))
  n = 28 * 28 * 3
  for i in range(3):
    expected = (x[i] - x[i].mean()) / max(x[i].std(), 1 / np.sqrt(n))
    np.testing.assert_allclose(got[i], expected, atol=1e-5)
  np.testing.assert_array_equal(got[1], 0.0)


def test_center_crop_takes_rows_2_to_30():
  x = jnp.arange(2 * 32 * 32 * 3, dtype=jnp.float32).reshape(2, 32, 32, 3)
  np.testing.assert_array_equal(preprocess.center_crop(x, 28), x[:, 2:30, 2:30, :])


def test_crop_follows_input_size():
  assert preprocess.crop_size_for((32, 32, 3), 28) == 28
  assert preprocess.crop_size_for((8, 8, 1), 28) is None
  assert preprocess.crop_size_for((28, 28, 1), 28) is None
  assert preprocess.cropped_shape((8, 8, 1), 28) == (8, 8, 1)


def test_random_crop_windows_are_valid_and_vary():
  x = jnp.arange(32 * 32, dtype=jnp.float32).reshape(1, 32, 32, 1).repeat(64, axis=0)
  crops = np.asarray(preprocess.random_crop(jax.random.key(0), x, 28))
  assert crops.shape == (64, 28, 28, 1)
  corner = crops[:, 0, 0, 0].astype(int)
  tops, lefts = corner // 32, corner % 32
  assert tops.min() >= 0 and tops.max() <= 4 and lefts.max() <= 4
  assert len(set(zip(tops, lefts, strict=True))) > 5
  for c, t, left in zip(crops, tops, lefts, strict=True):
    np.testing.assert_array_equal(c[..., 0], np.asarray(x[0, t:t + 28, left:left + 28, 0]))


def test_flip_and_jitter_change_images_deterministically():
  x = jax.random.uniform(jax.random.key(0), (16, 8, 8, 3))
  f1 = preprocess.random_flip(jax.random.key(1), x)
  f2 = preprocess.random_flip(jax.random.key(1), x)
  np.testing.assert_array_equal(f1, f2)
  flipped = [not np.allclose(f1[i], x[i]) for i in range(16)]
  assert 0 < sum(flipped) < 16
  for i in np.flatnonzero(flipped):
    np.testing.assert_array_equal(f1[i], x[i, :, ::-1])
  j = preprocess.random_brightness_contrast(jax.random.key(2), x)
  assert j.shape == x.shape and not np.allclose(j, x)


def test_channel_stats_of_center_crop():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(10, 32, 32, 3), dtype=np.uint8)
  mean, std = preprocess.channel_stats(images, 28)
  crop = images[:, 2:30, 2:30].astype(np.float64) / 255
  np.testing.assert_allclose(mean, crop.mean(axis=(0, 1, 2)), rtol=1e-5)
  np.testing.assert_allclose(std, crop.std(axis=(0, 1, 2)), rtol=1e-5)
