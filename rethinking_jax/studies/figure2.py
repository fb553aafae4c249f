"""Figure 2b: implicit regularizers on CIFAR10 -- small Inception with and without
batch-norm, true labels, no explicit regularizers; train/test accuracy against steps with the
running best test accuracy (what early stopping could gain). (Figure 2a, ImageNet, belongs to
Table 2's study.)
"""

from __future__ import annotations

import os

from rethinking_jax.reports import files, panels, plots, stats, suite_report
from rethinking_jax.reports.style import plt
from rethinking_jax.studies.study import Study

MODELS = ("inception_small", "inception_small_nobn")  # the figure's panels, in order
PAPER = ("batch-norm stabilizes training and adds 3-4 points of test accuracy; early "
         "stopping would not help on CIFAR10 (running best ~ final)")


def runs() -> dict:
  return {model: dict(model=model, randomizations="true_labels") for model in MODELS}


def section(workdir, runs) -> list[str]:
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
  table = ["| model | final train % | final test % | best test % (early stopping) |",
           "|---|---:|---:|---:|"]
  for ax, model in zip(axes, MODELS, strict=True):
    run = panels.run_of_model(runs.values(), model)
    ax.set(title=model, xlabel="steps", ylabel="accuracy")
    ax.grid(alpha=0.3)
    if not run:
      continue
    plots.accuracy_panel(ax, suite_report.member_records(run, 0), model)  # the first seed's curves
    ms = [m for m in run["summary"]["members"] if m["randomization"] == "true_labels"]
    table.append(f"| {model} | {stats.cell([m['train_acc'] for m in ms])} | "
                 f"{stats.cell([m['test_acc'] for m in ms])} | "
                 f"{stats.cell([m['best_test_acc'] for m in ms])} |")
  fig.tight_layout()
  files.save_figure(fig, os.path.join(workdir, "figure2.png"), dpi=110)
  plt.close(fig)
  return ["## Figure 2b — implicit regularization: batch-norm and early stopping", "",
          "![Figure 2](figure2.png)", "", *table, "",
          suite_report.SEEDS_NOTE + " Curves: the first seed.", "", f"Paper: {PAPER}.", ""]


STUDY = Study(name="figure2", title="Figure 2", seed_offset=200, runs=runs, section=section,
              config=dict(stop_when_memorized=False, num_epochs=100))
