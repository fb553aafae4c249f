"""Table 1: CIFAR10 train / test accuracy of five models, with and without random crop and
weight decay, and on random labels (rethinking_jax/studies/table1.py).

    python -m rethinking_jax.main --config=configs/table1.py --workdir=runs/table1
    ... --config=configs/table1.py:inception     (a subset: models starting with the argument)
    ... --config=configs/table1.py:smoke         (tiny synthetic stand-in: 58 s cold, 18 s warm)
    ... --config=configs/table1.py:alexnet_small,per_member,seeds=3   (one run per member)

`per_member` splits the runs into one per member (RUN_LABELS[_wd]_seedS), each stopping at
its own memorization: on a CPU, where members train one after another, a run of several
would train every member until its slowest one memorized (scripts/results_cpu.sh
table1_alexnet).
"""

from rethinking_jax.configs import common


def get_config(arg=None):
  return common.suite("table1", arg)
