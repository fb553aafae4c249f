"""Theorem 1: a depth-2 ReLU network with 2n + d weights fits random labels on n points.

    python -m rethinking_jax.main --config=configs/theorem1.py --workdir=runs/theorem1
    ... --config=configs/theorem1.py:smoke      (n = 200, seconds)

n CIFAR-shaped (32x32x3, d = 3072) Gaussian points with random labels, in float64; n = 10,000
keeps the n x n float64 matrices at 0.8 GB each. Also the depth-k corollary for k = 2, 4, 8.
"""

import ml_collections

from rethinking_jax.configs import default


def get_config(arg=None):
  default.check_arg(arg, "theorem1.py", ("smoke",))
  c = ml_collections.ConfigDict()  # its own fields only: it trains no network, reads no data
  c.experiment = "theorem1"
  c.theorem1_n = 200 if arg == "smoke" else 10_000
  c.theorem1_shape = (32, 32, 3)
  c.theorem1_seed = 0
  c.theorem1_depths = (2, 4, 8)
  c.smoke = arg == "smoke"
  return c
