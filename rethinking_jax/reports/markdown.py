"""report.md: one row per member, in the paper's units (accuracy in %)."""

from __future__ import annotations

import os

from rethinking_jax.reports import plots


def write_run_report(workdir: str, summary: dict, history: list[dict]) -> str:
  """WORKDIR/report.md and curves.png of a run, from its summary and metrics records."""
  path = os.path.join(workdir, "report.md")
  with open(path, "w") as f:
    f.write(run_report(summary))
  plots.plot_curves(history, os.path.join(workdir, "curves.png"),
                    title=f"{summary['run']['model']} on {summary['run']['dataset']}")
  return path


def _pct(x):
  return "—" if x is None else f"{100 * x:.2f}"


def run_report(summary: dict) -> str:
  run = summary["run"]
  lines = [
      f"# {run['name']}",
      "",
      f"Dataset **{run['dataset']}** ({run['num_train']} train / {run['num_test']} test), "
      f"model **{run['model']}**, {len(summary['members'])} members trained together "
      f"(strategy `{run['member_strategy']}`), batch {run['batch_size']}.",
      "",
      f"Stopped after {run['epochs']} epochs ({run['steps']} steps): {run['stop_reason']}. "
      f"Training {run['train_seconds']:.1f} s, evaluation {run['eval_seconds']:.1f} s, "
      f"compilation {run['compile_seconds']:.1f} s; "
      f"{run['examples_per_second']:,.0f} training examples/s over all members.",
      "",
      "| member | randomization | lr | wd | train acc % | test acc % | train loss | "
      "steps to memorize | best test % |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for m in summary["members"]:
    steps = "diverged" if m["diverged"] else (m["steps_to_memorize"] or "not reached")
    loss = "—" if m["train_loss"] is None else f"{m['train_loss']:.4f}"
    lines.append(
        f"| {m['label']} | {m['randomization']} | {m['learning_rate']:g} | "
        f"{m['weight_decay']:g} | {_pct(m['train_acc'])} | {_pct(m['test_acc'])} | {loss} | "
        f"{steps} | {_pct(m['best_test_acc'])} |")
  lines += ["", "Train accuracy is measured on the full training set in eval mode, against "
            "each member's own (possibly randomized) labels; test labels are the true ones. "
            "Curves: `curves.png`; every evaluation point: `metrics.jsonl`.", ""]
  return "\n".join(lines)
