"""Table 1: CIFAR10 train/test accuracy of five models, with and without random crop and
weight decay, and on random labels (PAPER.md §5).

    python -m rethinking_jax.main --config=configs/table1.py --workdir=runs/table1
    ... --config=configs/table1.py:inception     (a subset: models starting with the argument)
    ... --config=configs/table1.py:smoke         (tiny synthetic stand-in, seconds)

Members that share an architecture and a crop train together: for each model one run with
center crop (true and random labels, weight decay 0 and the paper's value: the extra
random-labels + weight-decay member is Table 4's row) and, for the conv nets, one with random
crop (true labels, both weight decays).

    ... --config=configs/table1.py:alexnet_small,per_member,seeds=3   (one run per member)

`per_member` splits those runs into one per member (RUN_LABELS[_wd]_seedS), each stopping at
its own memorization: on a CPU, where members train one after another, a run of several
would train every member until its slowest one memorized (scripts/results_cpu.sh
table1_alexnet).
"""

from configs import common


def runs():
  out = {}
  for model in ("inception_small", "inception_small_nobn", "alexnet_small", "mlp_3x512",
                "mlp_1x512"):
    wd = common.PAPER_WEIGHT_DECAY[model]
    out[f"{model}_center"] = dict(model=model, train_transform="center_crop",
                                  randomizations="true_labels,random_labels",
                                  weight_decays=f"0,{wd}")
    if model in ("inception_small", "alexnet_small"):
      out[f"{model}_random_crop"] = dict(model=model, train_transform="random_crop",
                                         randomizations="true_labels", weight_decays=f"0,{wd}")
  return out


def get_config(arg=None):
  return common.suite("table1", runs(), arg)
