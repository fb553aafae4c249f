"""Table 4: fitting random labels *with* explicit regularizers (rethinking_jax/studies/
table4.py). `table4.py:smoke` on tiny synthetic data."""

from rethinking_jax.configs import common


def get_config(arg=None):
  return common.suite("table4", arg)
