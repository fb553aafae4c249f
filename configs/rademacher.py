"""The paper's section 2.2 made executable: an empirical Rademacher complexity estimate.

Every member trains on the same CIFAR10 inputs with its own uniformly random +-1 labels
(`random_labels` with the labels folded to `num_classes=2`), by the paper's procedure (SGD,
momentum 0.9, lr 0.01 x 0.95 per epoch, batch 128). The estimate of a member is the
correlation of its fitted outputs with its labels on the training set,
(1/n) sum_i sigma_i f(x_i) = 2 x train accuracy - 1; the report gives its mean and spread
over the members of a run (`seeds=N`), at the end and along training (early stopping). The
paper's claim: for these networks it is ~1. Where it drops: a narrow network (MLP 1x32),
strong weight decay (0.01, 100x the paper's), and early in training.

    python -m rethinking_jax.main --config=configs/rademacher.py:seeds=3 --workdir=runs/rad
    ... --config=configs/rademacher.py:smoke     (tiny synthetic data, seconds)
"""

from configs import common

STRONG_WEIGHT_DECAY = 0.01


def runs():
  return {
      "mlp_1x512": dict(model="mlp_1x512", randomizations="random_labels"),
      "mlp_1x32": dict(model="mlp_1x32", randomizations="random_labels"),
      "mlp_1x512_strong_wd": dict(model="mlp_1x512", randomizations="random_labels",
                                  weight_decay=STRONG_WEIGHT_DECAY),
  }


def get_config(arg=None):
  return common.suite("rademacher", runs(), arg, num_classes=2)
