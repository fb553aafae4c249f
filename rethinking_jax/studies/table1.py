"""Table 1: CIFAR10 train / test accuracy of five models, with and without random crop and
weight decay, and on random labels (docs/PROTOCOL.md §5).

Members that share an architecture and a crop train together: for each model one run with
center crop (true and random labels, weight decay 0 and the paper's value: the extra
random-labels + weight-decay member is Table 4's row) and, for the conv nets, one with random
crop (true labels, both weight decays).
"""

from __future__ import annotations

import os

from rethinking_jax.reports import paper, stats, suite_report
from rethinking_jax.studies.study import Study

# (model, random crop, weight decay, random labels, train %, test %).
PAPER = [
    ("inception_small", True, True, False, 100.0, 89.05),
    ("inception_small", True, False, False, 100.0, 89.31),
    ("inception_small", False, True, False, 100.0, 86.03),
    ("inception_small", False, False, False, 100.0, 85.75),
    ("inception_small", False, False, True, 100.0, 9.78),
    ("inception_small_nobn", False, True, False, 100.0, 83.00),
    ("inception_small_nobn", False, False, False, 100.0, 82.00),
    ("inception_small_nobn", False, False, True, 100.0, 10.12),
    ("alexnet_small", True, True, False, 99.90, 81.22),
    ("alexnet_small", True, False, False, 99.82, 79.66),
    ("alexnet_small", False, True, False, 100.0, 77.36),
    ("alexnet_small", False, False, False, 100.0, 76.07),
    ("alexnet_small", False, False, True, 99.82, 9.86),
    ("mlp_3x512", False, True, False, 100.0, 53.35),
    ("mlp_3x512", False, False, False, 100.0, 52.39),
    ("mlp_3x512", False, False, True, 100.0, 10.48),
    ("mlp_1x512", False, True, False, 99.80, 50.39),
    ("mlp_1x512", False, False, False, 100.0, 50.51),
    ("mlp_1x512", False, False, True, 99.34, 10.61),
]
MODELS = tuple(dict.fromkeys(row[0] for row in PAPER))


def runs() -> dict:
  out = {}
  for model in MODELS:
    wd = paper.WEIGHT_DECAY[model]
    out[f"{model}_center"] = dict(model=model, train_transform="center_crop",
                                  randomizations="true_labels,random_labels",
                                  weight_decays=f"0,{wd}")
    if any(row[0] == model and row[1] for row in PAPER):
      out[f"{model}_random_crop"] = dict(model=model, train_transform="random_crop",
                                         randomizations="true_labels", weight_decays=f"0,{wd}")
  return out


def section(workdir, runs) -> list[str]:
  rows, lines = [], ["| model | random crop | weight decay | labels | paper train | ours train "
                     "| Δ | paper test | ours test | Δ |", "|---|---|---|---|---:|---:|---:|"
                     "---:|---:|---:|"]
  for model, crop, wd, random, p_train, p_test in PAPER:
    ms = suite_report.find_all(runs, model, "random_crop" if crop else "center_crop",
                               "random_labels" if random else "true_labels", wd)
    train, test = [m["train_acc"] for m in ms], [m["test_acc"] for m in ms]
    rows.append({"model": model, "random_crop": crop, "weight_decay": wd,
                 "random_labels": random, "paper_train": p_train,
                 **stats.csv_fields("ours_train", train), "paper_test": p_test,
                 **stats.csv_fields("ours_test", test)})
    lines.append(f"| {model} | {'yes' if crop else 'no'} | {'yes' if wd else 'no'} | "
                 f"{'random' if random else 'true'} | {p_train:.2f} | {stats.cell(train)} | "
                 f"{stats.diff(train, p_train)} | {p_test:.2f} | {stats.cell(test)} | "
                 f"{stats.diff(test, p_test)} |")
  suite_report.write_csv(os.path.join(workdir, "table1.csv"), rows, list(rows[0]))
  return ["## Table 1 — CIFAR10 train / test accuracy (%)", "", *lines, "",
          suite_report.SEEDS_NOTE, "", "CSV: `table1.csv`.", ""]


STUDY = Study(name="table1", title="Table 1", seed_offset=0, runs=runs, section=section)
