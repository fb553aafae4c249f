"""Figure 2b: small Inception with and without batch-norm on CIFAR10 (rethinking_jax/studies/
figure2.py). `figure2.py:smoke` on tiny synthetic data."""

from rethinking_jax.configs import common


def get_config(arg=None):
  return common.suite("figure2", arg)
