"""The paper's section 2.2 made executable: an empirical Rademacher complexity estimate
(rethinking_jax/studies/rademacher.py).

    python -m rethinking_jax.main --config=configs/rademacher.py:seeds=3 --workdir=runs/rad
    ... --config=configs/rademacher.py:smoke     (tiny synthetic data, seconds)
"""

from rethinking_jax.configs import common


def get_config(arg=None):
  return common.suite("rademacher", arg)
