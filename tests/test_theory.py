import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rethinking_jax.base.errors import UserError
from rethinking_jax.theory import experiments, expressivity, kernels, min_norm_sgd


def test_worked_example():
  x, b, y = np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.5, 2.5]), np.array([5.0, -1.0, 4.0])
  np.testing.assert_allclose(expressivity.solve_weights(x, b, y), [10.0, -32.0, 54.0])
  np.testing.assert_allclose(expressivity.thresholds(x), b)


def random_problem(n=200, d=20, seed=0):
  rng = np.random.default_rng(seed)
  return rng.standard_normal((n, d)), rng.integers(0, 10, n).astype(np.float64)


def test_random_labels_on_random_points_fit_to_1e_8_with_2n_plus_d_weights():
  z, y = random_problem()
  net = expressivity.construct(z, y, seed=1)
  assert net.num_params == 2 * 200 + 20
  assert np.max(np.abs(expressivity.evaluate(net, z) - y)) < 1e-8
  with jax.enable_x64(True):  # the same network as Flax parameters
    model = expressivity.Depth2ReLU(width=200)
    out = model.apply(expressivity.flax_params(net), np.asarray(z))
  assert np.max(np.abs(np.asarray(out) - y)) < 1e-8


def test_equal_projections_are_a_clear_error():
  z, y = random_problem(n=10, d=4)
  z[7] = z[3]
  y[7] = y[3] + 1
  with pytest.raises(UserError, match="points 3 and 7 have equal projections"):
    expressivity.construct(z, y)


def test_depth_k_corollary_fits_with_o_n_plus_d_weights():
  z, y = random_problem(n=120, d=30)
  for depth in (2, 4, 8):
    layers, nonzero = expressivity.construct_deep(z, y, depth)
    assert len(layers) == depth + 1
    assert max(w.shape[1] for w, _ in layers[1:-1]) <= -(-120 // (depth - 1)) + 3
    assert nonzero <= 4 * (120 + 30)
    assert np.max(np.abs(expressivity.evaluate_deep(layers, z) - y)) < 1e-6


def test_blocked_gram_and_solver_equal_a_reference_solve():
  rng = np.random.default_rng(0)
  x, y = rng.standard_normal((70, 5)), rng.standard_normal((30, 5))
  bw = 1.7
  reference = np.exp(-((x[:, None] - y[None]) ** 2).sum(-1) / (2 * bw**2))
  np.testing.assert_allclose(kernels.gram(x, y, "gaussian", bw, block=16), reference,
                             rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(kernels.gram(x, y, "linear", block=16), x @ y.T, rtol=1e-12)
  k = kernels.gram(x, x, "gaussian", bw)
  targets = kernels.one_hot(rng.integers(0, 3, 70), 3)
  for l2 in (0.0, 0.1):  # the blocked in-place float64 fit against a dense solve
    alpha, scores, norms, jitter = kernels._fit_in_place(
        lambda: kernels.gram(x, x, "gaussian", bw, block=16), targets, l2, block=16,
        dtype=np.float64)
    dense = np.linalg.solve(k + l2 * np.eye(70), targets)
    assert jitter == 0.0  # float64 interpolates exactly: no jitter tried first
    np.testing.assert_allclose(alpha, dense, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(scores, k @ dense, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(norms ** 2, np.diag(dense.T @ k @ dense), rtol=1e-6)
  with pytest.raises(UserError, match="kernel: unknown value 'rbf'; allowed: gaussian, linear"):
    kernels.gram(x, y, "rbf")


def test_sgd_from_zero_reaches_the_pseudo_inverse_solution():
  r = min_norm_sgd.experiment(n=30, d=120, epochs=200, lr=0.003)
  assert r["from_zero"]["relative_distance_to_pinv"][-1] < 1e-3
  assert r["from_random"]["relative_distance_to_pinv"][-1] > 0.1  # another interpolant
  assert r["from_random"]["relative_distance_to_limit"][-1] < 1e-3
  assert r["from_random"]["norm"] > r["pinv_norm"]


@pytest.mark.parametrize("name", ["theorem1", "table3", "min_norm_sgd"])
def test_theory_smoke_configs_run(name, tmp_path):
  config = importlib.import_module(f"rethinking_jax.configs.{name}").get_config("smoke")
  experiments.run(config, str(tmp_path))
  summary = json.loads((tmp_path / "summary.json").read_text())
  report = (tmp_path / "report.md").read_text()
  if name == "theorem1":
    assert summary["rows"][0]["params"] == summary["two_n_plus_d"]
    assert summary["rows"][0]["max_error"] < 1e-6
  elif name == "table3":
    assert "Smoke run" in report
    rows = {r["row"]: r for r in summary["rows"]}
    assert rows["mnist_raw"]["train_error"] == 0.0  # interpolates
    assert rows["mnist_raw"]["test_error"] < 0.05   # digits: ~1%
  else:
    assert (tmp_path / "min_norm_sgd.png").exists()


def test_the_in_place_float32_fit_matches_float64():
  """The 50,000-point path (K factored in its own memory, scores and norms from the factor)
  gives float64's interpolant on a well-conditioned problem."""
  from rethinking_jax.theory import kernels

  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(600, 20)).astype(np.float32), rng.integers(0, 10, 600)
  xt, yt = rng.normal(size=(100, 20)).astype(np.float32), rng.integers(0, 10, 100)
  a = kernels.fit_and_evaluate(x, y, xt, yt, 10, "gaussian", dtype=np.float64)
  b = kernels.fit_and_evaluate(x, y, xt, yt, 10, "gaussian", dtype=np.float32, block=64)
  assert a["train_error"] == b["train_error"] == 0.0 and a["test_error"] == b["test_error"]
  np.testing.assert_allclose(b["norm_per_class"], a["norm_per_class"], rtol=2e-3)
  assert b["dtype"] == "float32" and 0 < b["jitter"] < 1e-3


def test_the_cifar10_jpeg_variant_keeps_the_three_cifar_rows():
  import importlib

  config = importlib.import_module("rethinking_jax.configs.table3").get_config("cifar10_jpeg")
  assert sorted(config.table3_rows) == ["cifar10_gaussian", "cifar10_random_features",
                                        "cifar10_random_features_l2"]
  assert config.dataset == "image_folder" and not config.kernel_float64
  rows = config.table3_rows
  assert not rows.cifar10_gaussian.get("float64", False)  # 40,000 points: float32
  assert rows.cifar10_random_features.float64 and rows.cifar10_random_features_l2.float64
  features = importlib.import_module("rethinking_jax.configs.table3").get_config(
      "cifar10_jpeg_features")
  assert sorted(features.table3_rows) == ["cifar10_random_features",
                                          "cifar10_random_features_l2"]
  for arg, n, filters in (("cifar10_jpeg_patches", 20_000, 8_000),
                          ("cifar10_jpeg_patches_n10000", 10_000, 4_000),
                          ("cifar10_jpeg_patches_full", 50_000, 32_000)):
    rows = importlib.import_module("rethinking_jax.configs.table3").get_config(arg).table3_rows
    assert sorted(rows) == ["cifar10_random_patches", "cifar10_random_patches_l2"]
    assert all(r.features == "random_patches" and r.num_train == n and r.num_filters == filters
               and r.float64 == (n < 50_000) for r in rows.values())
    assert rows.cifar10_random_patches.l2 == 0 and rows.cifar10_random_patches_l2.l2 == (
        0.01 * 8 * filters)  # 1% of K's mean diagonal (standardised features)


def test_the_blocked_factorization_and_solves_equal_the_dense_ones():
  """kernels.blocked_cholesky / lower_solve / lower_times (the float32 path's LAPACK calls stay
  tile-sized) against numpy on a matrix of several uneven blocks."""
  rng = np.random.default_rng(0)
  n, block = 777, 100
  a = rng.standard_normal((n, 50))
  k = a @ a.T + n * np.eye(n)
  lower = np.tril(kernels.blocked_cholesky(k.copy(), block))
  np.testing.assert_allclose(lower, np.linalg.cholesky(k), rtol=0, atol=1e-10 * np.abs(k).max())
  y = rng.standard_normal((n, 3))
  np.testing.assert_allclose(kernels.lower_solve(lower, y, block), np.linalg.solve(lower, y),
                             atol=1e-10)
  np.testing.assert_allclose(kernels.lower_solve(lower, y, block, transpose=True),
                             np.linalg.solve(lower.T, y), atol=1e-10)
  np.testing.assert_allclose(kernels.lower_times(lower, y, block), lower @ y, atol=1e-9)
  np.testing.assert_allclose(kernels.lower_times(lower, y, block, transpose=True), lower.T @ y,
                             atol=1e-9)
  with pytest.raises(np.linalg.LinAlgError):
    kernels.blocked_cholesky(-k, block)


def test_the_random_patch_features_follow_the_coates_ng_recipe():
  """KeystoneML's RandomPatchCifar: whitened unit-norm patch filters; the symmetric rectifier
  (an inverted image swaps each filter's positive and negative maps); 2x2 sum pooling (8
  features per filter); features standardised on the training split."""
  from rethinking_jax.theory import features

  rng = np.random.default_rng(0)
  train = rng.integers(0, 256, (60, 12, 12, 3), dtype=np.uint8)
  test = rng.integers(0, 256, (10, 12, 12, 3), dtype=np.uint8)
  filters, mean, zca = features.patch_filters(train, 200, size=4)
  assert filters.shape == (48, 200)
  np.testing.assert_allclose(np.linalg.norm(filters, axis=0), 1.0, rtol=1e-5)
  # ZCA: the whitened sample's covariance has eigenvalues s / (s + eps) <= 1, the top ones ~1
  eig = np.linalg.eigvalsh(np.cov(np.asarray(filters), rowvar=True))
  assert eig.max() < 1.0
  x = jnp.asarray(train[:4], jnp.float32)
  zero = jnp.zeros_like(jnp.asarray(mean))
  a = np.asarray(features.patch_responses(x, jnp.asarray(filters), zero, jnp.asarray(zca), 4))
  b = np.asarray(features.patch_responses(255.0 - x, jnp.asarray(filters), zero,
                                          jnp.asarray(zca), 4))
  a, b = a.reshape(4, 4, 2, 200), b.reshape(4, 4, 2, 200)  # [image, quadrant, sign, filter]
  np.testing.assert_allclose(a[:, :, 0], b[:, :, 1], rtol=1e-4, atol=1e-3)
  assert (a > 0).mean() > 0.1  # not an all-zero rectifier
  # sum pooling: the 9x9 positions of a 12x12 image with 4x4 patches, quadrants of 5 and 4
  p = np.asarray(features._contrast_normalised(features._patches(x[:1], 4)))[0]  # [9, 9, 48]
  y = p @ (np.asarray(zca) @ filters[:, :1])
  np.testing.assert_allclose(a[0, 3, 0, 0], np.maximum(y[5:, 5:] - 0.25, 0).sum(), rtol=1e-4)
  f_train, f_test = features.random_patch_features(train, test, 200, size=4)
  assert f_train.shape == (60, 1600) and f_test.shape == (10, 1600)
  live = f_train.std(axis=0) > 0.5
  np.testing.assert_allclose(f_train.mean(axis=0), 0.0, atol=1e-4)
  np.testing.assert_allclose(f_train.std(axis=0)[live], 1.0, rtol=1e-3)
