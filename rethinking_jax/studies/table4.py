"""Table 4: fitting random labels *with* explicit regularizers (docs/PROTOCOL.md §5).

Inception with weight decay, random crop, augment; AlexNet, MLP 3x512 and MLP 1x512 with
weight decay. As the paper did, the crop and augment runs decay the learning rate by 0.999
per epoch (instead of 0.95) and train longer.
"""

from __future__ import annotations

import os

from rethinking_jax.reports import paper, protocol, stats, suite_report
from rethinking_jax.studies.study import Study

# (model, regularizer, train %); None: "fails to converge".
PAPER = [
    ("inception_small", "weight decay", 100.0),
    ("inception_small", "random crop", 99.93),
    ("inception_small", "augment", 99.28),
    ("alexnet_small", "weight decay", None),
    ("mlp_3x512", "weight decay", 100.0),
    ("mlp_1x512", "weight decay", 99.21),
]
AUGMENTED = {"lr_decay_rate": 0.999}  # the random-crop and augment runs: a slower decay
AUGMENTED_EPOCHS = 1000               # ... and trained longer


def runs() -> dict:
  out = {}
  for model in ("inception_small", "alexnet_small", "mlp_3x512", "mlp_1x512"):
    out[f"{model}_weight_decay"] = dict(model=model, randomizations="random_labels",
                                        weight_decay=paper.WEIGHT_DECAY[model])
  for transform in ("random_crop", "augment"):
    out[f"inception_small_{transform}"] = dict(
        model="inception_small", randomizations="random_labels", train_transform=transform,
        num_epochs=AUGMENTED_EPOCHS, **AUGMENTED)
  return out


def paper_protocol(config: dict) -> dict:
  out = protocol.cifar10(config)
  if config.get("train_transform") in ("random_crop", "augment"):
    out.update(AUGMENTED)
  return out


def section(workdir, runs) -> list[str]:
  lines = ["| model | regularizer | paper train % | ours train % | Δ | steps to memorize |",
           "|---|---|---:|---:|---:|---:|"]
  rows = []
  for model, regularizer, p_train in PAPER:
    if regularizer == "weight decay":
      ms = suite_report.find_all(runs, model, "center_crop", "random_labels", True)
    else:
      ms = suite_report.find_all(runs, model, regularizer.replace(" ", "_"), "random_labels")
    acc = [m["train_acc"] for m in ms]
    steps = [m["steps_to_memorize"] for m in ms]
    reached = [s for s in steps if s is not None]
    steps_text = ("—" if not ms else "not reached" if not reached else
                  stats.cell(reached, scale=1, digits=0)
                  + (f", {len(steps) - len(reached)} not reached" if len(reached) < len(steps)
                     else ""))
    rows.append({"model": model, "regularizer": regularizer, "paper_train": p_train,
                 **stats.csv_fields("ours_train", acc)})
    paper_text = "fails to converge" if p_train is None else f"{p_train:.2f}"
    lines.append(f"| {model} | {regularizer} | {paper_text} | {stats.cell(acc)} | "
                 f"{stats.diff(acc, p_train)} | {steps_text} |")
  suite_report.write_csv(os.path.join(workdir, "table4.csv"), rows, list(rows[0]))
  return ["## Table 4 — fitting random labels with explicit regularizers (train accuracy)",
          "", *lines, "", suite_report.SEEDS_NOTE, "", "CSV: `table4.csv`.", ""]


STUDY = Study(name="table4", title="Table 4", seed_offset=300, runs=runs, section=section,
              protocol=paper_protocol)
