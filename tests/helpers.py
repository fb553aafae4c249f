"""Small configs and runners shared by the engine tests."""

import jax
import numpy as np

from configs import default
from rethinking_jax import train


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
  run = train.prepare(config)
  return run, run.fit()


def member_params(result, m):
  return jax.tree.map(lambda x: np.asarray(x[m]), result.state.params)


def assert_trees_close(a, b, atol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(x, y, atol=atol, rtol=0)
