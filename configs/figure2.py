"""Figure 2b: implicit regularizers on CIFAR10 -- small Inception with and without
batch-norm, true labels, no explicit regularizers; train/test accuracy against steps with the
running best test accuracy (what early stopping could gain). `figure2.py:smoke` on tiny
synthetic data. (Figure 2a, ImageNet, belongs to configs/table2.py.)
"""

from configs import common
from rethinking_jax.reports import paper


def get_config(arg=None):
  runs = {model: dict(model=model, randomizations="true_labels")
          for model in paper.FIGURE2_MODELS}
  return common.suite("figure2", runs, arg, stop_when_memorized=False, num_epochs=100)
