"""Figure 1: fitting random labels and random pixels on CIFAR10 (PAPER.md §5).

(a) small Inception on true labels, random labels, shuffled pixels, random pixels and
Gaussian noise: training loss against steps. (b) relative convergence time and (c) test
error after convergence, for label corruption p in {0, 0.2, ..., 1}, for small Inception,
AlexNet and MLP 1x512 -- each model's corruption levels are the members of one run.
No regularizers. `figure1.py:smoke` runs the same suite on tiny synthetic data.

Panel (a) also for the MLP 1x512 (one run, five members: on the CPU none memorizes early, so
they all train to the cap) and the small AlexNet, one run per input kind
(`a_alexnet_small_KIND`, selected together by `figure1.py:a_alexnet_small`): each stops when
its own member memorized, where one five-member run would train every member until the
slowest one memorized. The reports put a model's panel-(a) runs back together.

Panels (b, c) likewise for the small AlexNet on the CPU, one run per corruption level
(`bc_alexnet_small_pPERCENT`, selected together by `figure1.py:bc_alexnet_small_p`): each member
stops at its own convergence, so (c)'s test error is measured there, and the six cost the
sum of their steps rather than six times the slowest's. `bc_alexnet_small` is the one-run
form (a GPU trains its members at once).
"""

from configs import common
from rethinking_jax.reports import paper

LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
KINDS = ("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")


def runs():
  out = {f"a_{model}": dict(model=model, panel="a", randomizations=",".join(KINDS))
         for model in ("inception_small", "mlp_1x512")}
  for kind in KINDS:
    out[f"a_alexnet_small_{kind}"] = dict(model="alexnet_small", panel="a", randomizations=kind)
  for model in paper.FIGURE1_MODELS:
    out[f"bc_{model}"] = dict(
        model=model, panel="bc",
        randomizations=",".join(f"corrupt_labels:{p:g}" for p in LEVELS))
  for p in LEVELS:
    out[f"bc_alexnet_small_p{round(100 * p)}"] = dict(model="alexnet_small", panel="bc",
                                           randomizations=f"corrupt_labels:{p:g}")
  return out


def get_config(arg=None):
  return common.suite("figure1", runs(), arg)
