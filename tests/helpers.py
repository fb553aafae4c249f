"""Small configs and runners shared by the engine tests."""

import os

import jax
import numpy as np

from rethinking_jax.configs import default
from rethinking_jax.engine import assemble


def float32_gamma(k: int) -> float:
  """gamma_K = K u / (1 - K u), u = 2^-24: two float32 summation orders of the same K terms
  differ by at most 2 gamma_K times the sum of the terms' magnitudes."""
  u = 2.0 ** -24
  return k * u / (1 - k * u)


def tiny_config(**overrides):
  c = default.get_config()
  c.dataset = "synthetic"
  c.synthetic_shape = (8, 8, 3)
  c.synthetic_train = 64
  c.synthetic_test = 32
  c.batch_size = 16
  c.learning_rate = 0.05
  c.lr_decay_rate = 0.9
  c.num_epochs = 2
  c.eval_every_epochs = 1
  c.eval_batch_size = 24
  c.progress = False
  c.stop_when_memorized = False
  for key, value in overrides.items():
    setattr(c, key, value)
  return c


def fit(config):
  run = assemble.prepare(config)
  return run, run.fit()


def member_params(result, m):
  return jax.tree.map(lambda x: np.asarray(x[m]), result.state.params)


def assert_trees_close(a, b, atol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(x, y, atol=atol, rtol=0)


def assert_same_conv_step(run, a, b):
  """Results `a` and `b` of one SGD step of a convolutional run (`run`: its prepared Run) by
  two formulations that order their float sums differently agree, where that cannot matter
  much, with tolerances that follow from the computation rather than from one CPU:

  - what the forward pass computes (losses, each member's batch-norm statistics) is a
    continuous function of the arithmetic: equal to ~1e-6 relative; checked at 1e-5 for the
    losses and at 1e-3 of their one-step change for the statistics;
  - gradients pass through ReLU and max-pool, whose routing flips when a last-bit change
    moves a value across 0 or breaks a tie, so single entries of an update can move by
    percents (seen: 3% of the entries of a leaf after one step; the update as a whole 0.5%).
    So each member's update is compared as a whole: a wrong formulation (another member's
    data, labels, crop or key) changes it by about 100% of itself; checked at 5%.
  Over many steps batch-norm nets amplify such differences without bound: compare one.
  """
  assert a.steps == b.steps == 1
  before = run.programs.init(run.members)
  for key in ("train_loss", "test_loss"):
    np.testing.assert_allclose([r[key] for r in a.history], [r[key] for r in b.history],
                               rtol=1e-5)
  for x0, x, y in zip(jax.tree.leaves(before.batch_stats), jax.tree.leaves(a.state.batch_stats),
                      jax.tree.leaves(b.state.batch_stats), strict=True):
    x0, x, y = (np.asarray(v, np.float64) for v in (x0, x, y))
    np.testing.assert_allclose(x, y, rtol=0, atol=1e-3 * np.max(np.abs(y - x0)))
  for m in range(len(run.specs)):
    assert relative_update_difference(before.params, a.state.params, b.state.params, m) < 0.05


def relative_update_difference(before, a, b, member):
  """||a - b|| / ||b - before|| over one member's whole tree."""
  num = den = 0.0
  for x0, x, y in zip(jax.tree.leaves(before), jax.tree.leaves(a), jax.tree.leaves(b),
                      strict=True):
    x0, x, y = (np.asarray(v[member], np.float64) for v in (x0, x, y))
    num += np.sum((x - y) ** 2)
    den += np.sum((y - x0) ** 2)
  return np.sqrt(num / den)


class DyingSplit:
  """A 100-image split whose reader process exits at example 50 (a killed, out-of-memory
  worker); picklable by reference, so grain's spawned workers import it from here."""

  def __len__(self):
    return 100

  def read(self, i):
    if i == 50:
      os._exit(3)
    return np.zeros((4, 4, 3), np.uint8), 0
