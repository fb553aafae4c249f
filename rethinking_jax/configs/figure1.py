"""Figure 1: fitting random labels and random pixels on CIFAR10 (rethinking_jax/studies/
figure1.py: its runs, panels and report).

    ... --config=configs/figure1.py:a_alexnet_small   (panel (a)'s AlexNet runs, one per kind)
    ... --config=configs/figure1.py:bc_alexnet_small_p (panels (b, c), one run per level)
    ... --config=configs/figure1.py:smoke             (tiny synthetic data: 72 s cold, 28 s warm)
"""

from rethinking_jax.configs import common


def get_config(arg=None):
  return common.suite("figure1", arg)
