"""Table 2 and Figure 2a: ImageNet with Inception V3 (rethinking_jax/studies/table2.py says
what the paper leaves open and the project's choices).

    python -m rethinking_jax.main --config=configs/table2.py --workdir=runs/table2
    ... --config=configs/table2.py:no_aug      (one run by name)
    ... --config=configs/table2.py:smoke       (tiny synthetic stand-in, streamed; ~2 min on a CPU)
"""

from rethinking_jax.configs import common


def get_config(arg=None):
  return common.suite("table2", arg)
