"""Complexity measures against cases with a known answer, and the study on a tiny run."""

import json
import re

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import tiny_config

from rethinking_jax.measures import complexity, study
from rethinking_jax.run import train


def two_layer():
  w1 = np.array([[1.0, -2.0, 0.0], [0.5, 0.0, 3.0]])   # 2 inputs -> 3 hidden
  w2 = np.array([[1.0], [0.0], [-1.0]])                # 3 hidden -> 1 output
  return {"Dense_0": {"kernel": w1, "bias": np.array([7.0, 7.0, 7.0])},
          "Dense_1": {"kernel": w2, "bias": np.array([1.0])}}, w1, w2


def test_norms_of_hand_set_weights():
  params, w1, w2 = two_layer()
  assert complexity.parameter_l2(params) == pytest.approx(
      np.sqrt(np.sum(w1**2) + np.sum(w2**2) + 3 * 49 + 1))
  assert complexity.frobenius_norms(params) == pytest.approx([np.sqrt(14.25), np.sqrt(2.0)])
  assert complexity.spectral_norms(params) == pytest.approx(
      [np.linalg.svd(w1, compute_uv=False)[0], np.sqrt(2.0)])
  # Path-l2: the paths 1-1-1 (1*1), 1-2-1 (4*0), 2-1-1 (0.25*1), 2-3-1 (9*1), ... squared.
  assert complexity.path_l2([w1, w2]) == pytest.approx(np.sqrt(1 + 0.25 + 9))
  s1, s2 = np.linalg.svd(w1, compute_uv=False)[0], np.sqrt(2.0)
  l21 = np.sum(np.linalg.norm(w1, axis=1)), np.sum(np.linalg.norm(w2, axis=1))
  expected = s1 * s2 * ((l21[0] / s1) ** (2 / 3) + (l21[1] / s2) ** (2 / 3)) ** 1.5
  assert complexity.spectral_complexity(params) == pytest.approx(expected)
  moved = {"Dense_0": {**params["Dense_0"], "kernel": w1 + 3.0}, "Dense_1": params["Dense_1"]}
  assert complexity.distance(moved, params) == pytest.approx(np.sqrt(6 * 9))


def test_a_conv_kernel_is_measured_as_its_per_patch_matrix():
  w = np.zeros((3, 3, 2, 4))
  w[1, 1, 0, 2] = 5.0
  assert complexity.spectral_norms({"Conv_0": {"kernel": w}}) == pytest.approx([5.0])


def test_margins():
  logits = np.array([[2.0, 1.0, -1.0], [0.0, 3.0, 1.0]])
  np.testing.assert_allclose(complexity.margins(logits, np.array([0, 2])), [1.0, -2.0])


def test_sharpness_of_least_squares_is_the_top_eigenvalue_of_x_t_x_over_n():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(50, 6)), rng.normal(size=50)
  loss = lambda p: 0.5 * jnp.mean((jnp.asarray(x, jnp.float32) @ p["w"] - y) ** 2)
  expected = np.linalg.eigvalsh(x.T @ x / 50)[-1]
  got = complexity.hessian_max_eigenvalue(loss, {"w": jnp.zeros(6)}, iterations=100)
  assert got == pytest.approx(expected, rel=1e-3)


def test_random_perturbation_of_a_quadratic_costs_its_mean_curvature():
  """loss = 0.5 w^T A w; a random u with |u| = r: E[loss(w+u) - loss(w)] = r^2 tr(A)/(2d)."""
  a = np.diag([1.0, 2.0, 3.0, 10.0])
  w = np.array([1.0, -1.0, 2.0, 0.5])
  loss = lambda p: 0.5 * p["w"] @ jnp.asarray(a, jnp.float32) @ p["w"]
  got = complexity.perturbed_loss_increase(loss, {"w": jnp.asarray(w, jnp.float32)},
                                           relative=0.1, samples=4000)
  r = 0.1 * np.linalg.norm(w)
  assert got == pytest.approx(r**2 * np.trace(a) / (2 * 4), rel=0.1)


def test_the_study_measures_every_member_of_a_run(tmp_path):
  config = tiny_config(dataset="digits", randomizations="true_labels,random_labels",
                       batch_size=128, learning_rate=0.1, lr_decay_rate=1.0, num_epochs=60,
                       eval_every_epochs=20, eval_batch_size=1000)
  train.train_and_evaluate(config, str(tmp_path))
  said = []
  rows = study.measure_run(str(tmp_path), examples=512, say=said.append)
  assert [r["label"] for r in rows] == ["true_labels", "random_labels"]
  assert said[0].startswith("reading the data of") and "measuring 2 members" in said[1]
  assert re.match(r"  step \d+, member 0 \(true_labels\): [\d.]+ s$", said[2])  # per member
  true, rand = rows
  assert true["gap"] < 0.1 < rand["gap"]  # the random-label member memorized, did not learn
  for name in ("param_l2", "distance_from_init", "path_l2", "spectral_complexity"):
    assert rand[name] > true[name] > 0, name  # memorizing random labels takes larger weights
  assert rand["margin_p10"] < true["margin_p10"]
  report = study.write_report(str(tmp_path), rows, 512)
  assert "tau with gap" in open(report).read()
  saved = json.loads((tmp_path / "measures" / "measures.json").read_text())
  assert set(saved["kendall_tau_with_gap"]) == set(study.MEASURES)
  assert (tmp_path / "measures" / "measures.png").read_bytes()[:4] == b"\x89PNG"
