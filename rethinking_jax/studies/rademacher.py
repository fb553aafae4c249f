"""The paper's section 2.2 made executable: an empirical Rademacher complexity estimate.

Every member trains on the same CIFAR10 inputs with its own uniformly random +-1 labels
(`random_labels` with the labels folded to `num_classes=2`), by the paper's procedure (SGD,
momentum 0.9, lr 0.01 x 0.95 per epoch, batch 128). The estimate of a member is the
correlation of its fitted outputs with its labels on the training set,
(1/n) sum_i sigma_i f(x_i) = 2 x train accuracy - 1; the report gives its mean and spread
over the members of a run (`seeds=N`), at the end and along training (early stopping). The
paper's claim: for these networks it is ~1. Where it drops: a narrow network (MLP 1x32),
strong weight decay (0.01, 100x the paper's), and early in training.
"""

from __future__ import annotations

import os
from collections import defaultdict

from rethinking_jax.reports import files, protocol, stats, suite_report
from rethinking_jax.reports.style import plt
from rethinking_jax.studies.study import Study

STRONG_WEIGHT_DECAY = 0.01
PROTOCOL = {"num_classes": 2}  # uniformly random +-1 labels


def runs() -> dict:
  return {
      "mlp_1x512": dict(model="mlp_1x512", randomizations="random_labels"),
      "mlp_1x32": dict(model="mlp_1x32", randomizations="random_labels"),
      "mlp_1x512_strong_wd": dict(model="mlp_1x512", randomizations="random_labels",
                                  weight_decay=STRONG_WEIGHT_DECAY),
  }


FRACTIONS = (0.125, 0.25, 0.5)  # of the run's steps: the estimate under early stopping


def estimates(run) -> dict:
  """{step: [2 x train accuracy - 1 of each random-label member]} at every evaluation point:
  on uniformly random +-1 labels, the correlation (1/n) sum_i sigma_i f(x_i) of the
  member's fitted +-1 outputs with its labels (the paper's section 2.2)."""
  random = {m["member"] for m in run["summary"]["members"]
            if m["randomization"] == "random_labels"}
  out = defaultdict(list)
  for r in run["metrics"]:
    if r["member"] in random:
      out[r["step"]].append(None if r["train_acc"] is None else 2 * r["train_acc"] - 1)
  return dict(sorted(out.items()))


def section(workdir, runs) -> list[str]:
  lines = ["## Empirical Rademacher complexity (the paper's section 2.2)", "",
           "Each member fits its own uniformly random ±1 labels of the same training inputs; "
           "its estimate is the correlation of its fitted outputs with them, "
           "(1/n) Σᵢ σᵢ f(xᵢ) = 2 × train accuracy − 1 (1: the labelling was fitted, 0: "
           "chance). Mean ± standard deviation over the members (N). "
           "The paper: ≈ 1 for the networks it trains, so Rademacher bounds say nothing.", "",
           "| run | model | weight decay | epochs | estimate at the end | "
           + " | ".join(f"at {f:g} of the steps (early stopping)" for f in FRACTIONS)
           + " |", "|---|---|---:|---:|---:|" + "---:|" * len(FRACTIONS)]
  fig, ax = plt.subplots(figsize=(8, 4.5))
  csv_rows = []
  for name, run in runs.items():
    by_step = estimates(run)
    if not by_step:
      continue
    steps = list(by_step)
    decays = sorted({m["weight_decay"] for m in run["summary"]["members"]})
    at = [by_step[min(steps, key=lambda s, f=f: abs(s - f * steps[-1]))]
          for f in FRACTIONS]
    lines.append(f"| {name} | {run['config']['model']} | {', '.join(f'{d:g}' for d in decays)} "
                 f"| {run['summary']['run']['epochs']} | "
                 f"{stats.cell(by_step[steps[-1]], scale=1, digits=3)} | "
                 + " | ".join(stats.cell(v, scale=1, digits=3) for v in at) + " |")
    summaries = [stats.summarize(by_step[s]) for s in steps]
    means = [m for m, _, _ in summaries]
    sds = [sd or 0.0 for _, sd, _ in summaries]
    ax.plot(steps, means, label=name)
    ax.fill_between(steps, [m - d for m, d in zip(means, sds, strict=True)],
                    [m + d for m, d in zip(means, sds, strict=True)], alpha=0.2)
    csv_rows += [{"run": name, "model": run["config"]["model"], "step": s,
                  **stats.csv_fields("estimate", by_step[s], scale=1)} for s in steps]
  ax.set(xlabel="steps", ylabel="2 × train accuracy − 1", ylim=(-0.05, 1.05),
         title="empirical Rademacher estimate (random ±1 labels)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  files.save_figure(fig, os.path.join(workdir, "rademacher.png"), dpi=110)
  plt.close(fig)
  suite_report.write_csv(os.path.join(workdir, "rademacher.csv"), csv_rows,
             ["run", "model", "step", "estimate", "estimate_sd", "estimate_n"])
  return [*lines, "", "![Rademacher estimate](rademacher.png)", "",
          "CSV: `rademacher.csv` (every evaluation point).", ""]


STUDY = Study(name="rademacher", title="Empirical Rademacher complexity", seed_offset=500,
              runs=runs, section=section, config=dict(num_classes=2),
              protocol=lambda config: {**protocol.cifar10(config), **PROTOCOL})
