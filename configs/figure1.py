"""Figure 1: fitting random labels and random pixels on CIFAR10 (PAPER.md §5).

(a) small Inception on true labels, random labels, shuffled pixels, random pixels and
Gaussian noise: training loss against steps. (b) relative convergence time and (c) test
error after convergence, for label corruption p in {0, 0.2, ..., 1}, for small Inception,
AlexNet and MLP 1x512 -- each model's corruption levels are the members of one run.
No regularizers. `figure1.py:smoke` runs the same suite on tiny synthetic data.
"""

from configs import common

LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def runs():
  out = {"a_inception_small": dict(
      model="inception_small", panel="a",
      randomizations="true_labels,random_labels,shuffled_pixels,random_pixels,gaussian")}
  for model in ("inception_small", "alexnet_small", "mlp_1x512"):
    out[f"bc_{model}"] = dict(
        model=model, panel="bc",
        randomizations=",".join(f"corrupt_labels:{p:g}" for p in LEVELS))
  return out


def get_config(arg=None):
  return common.suite("figure1", runs(), arg)
