"""SGD on an under-determined linear problem converges to the pseudo-inverse solution from
zero, and to another interpolant from a random start (docs/PROTOCOL.md §6).

    python -m rethinking_jax.main --config=configs/min_norm_sgd.py --workdir=runs/min_norm_sgd
"""

import ml_collections

from rethinking_jax.configs import default


def get_config(arg=None):
  default.check_arg(arg, "min_norm_sgd.py", ("smoke",))
  c = ml_collections.ConfigDict()  # its own fields only: it trains no network, reads no data
  c.experiment = "min_norm_sgd"
  c.sgd_n, c.sgd_d = 50, 200
  c.sgd_epochs = 300 if arg != "smoke" else 100
  c.sgd_lr = 0.002
  c.theorem1_seed = 0
  c.smoke = arg == "smoke"
  return c
