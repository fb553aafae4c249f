"""report.md: one row per member, in the paper's units (accuracy in %)."""

from __future__ import annotations

import os

from rethinking_jax.reports import files, plots, protocol


def write_run_report(workdir: str, config: dict, summary: dict, history: list[dict]) -> str:
  """WORKDIR/report.md and curves.png of a run, from its config, summary and metrics."""
  path = os.path.join(workdir, "report.md")
  title = f"{summary['run']['model']} on {summary['run']['dataset']}"
  plots.plot_curves(history, os.path.join(workdir, "curves.png"), title=title)
  dynamics = plots.plot_memorization(history, os.path.join(workdir, "memorization.png"),
                                     title=f"clean vs corrupted labels, {title}")
  text = run_report(summary, config)
  if dynamics:
    text += memorization_section(history)
  files.write_text(path, text)
  return path


def memorization_section(history: list[dict]) -> str:
  """Arpit et al. (2017): with label corruption p, the clean labels are fitted first. For
  each corrupted member, the first evaluation point: accuracy on its clean and on its
  corrupted labels, and where it fitted each."""
  lines = ["## Memorization dynamics", "",
           "Train accuracy on the labels a member's corruption kept (clean) and changed "
           "(corrupted): networks fit the clean examples first, then memorize the rest (Arpit "
           "et al. 2017). ![memorization](memorization.png)", "",
           "| member | first evaluation: clean % | corrupted % | step clean ≥ 99% | "
           "step corrupted ≥ 99% |", "|---|---:|---:|---:|---:|"]
  by_member = {}
  for r in history:
    if r.get("train_acc_corrupted") is not None and r.get("train_acc_clean") is not None:
      by_member.setdefault(r["label"], []).append(r)
  for label, records in by_member.items():
    first = records[0]
    when = lambda key, records=records: next((r["step"] for r in records if r[key] >= 0.99),
                                             "not reached")
    lines.append(f"| {label} | {_pct(first['train_acc_clean'])} | "
                 f"{_pct(first['train_acc_corrupted'])} | {when('train_acc_clean')} | "
                 f"{when('train_acc_corrupted')} |")
  return "\n".join(["", *lines, ""])


def _pct(x):
  return "—" if x is None else f"{100 * x:.2f}"


def _kernels(run: dict) -> str:
  """How the conv nets' layers ran (absent from older summaries and for MLPs)."""
  parts = [f"{name} `{run[key]}`" for key, name in (("layer_impl", "pooling/LRN"),
                                                    ("conv_impl", "convolutions"))
           if run.get(key)]
  return "".join(f", {p}" for p in parts)


def run_report(summary: dict, config: dict | None = None) -> str:
  run = summary["run"]
  lines = [
      f"# {run['name']}",
      "",
      f"Dataset **{run['dataset']}** ({run['num_train']} train / {run['num_test']} test), "
      f"model **{run['model']}**, {len(summary['members'])} members trained together "
      f"(strategy `{run['member_strategy']}`{_kernels(run)}), batch {run['batch_size']}.",
      "",
      f"Stopped after {run['epochs']} epochs ({run['steps']} steps): {run['stop_reason']}. "
      f"Training {run['train_seconds']:.1f} s, evaluation {run['eval_seconds']:.1f} s, "
      f"compilation {run['compile_seconds']:.1f} s; "
      f"{run['examples_per_second']:,.0f} training examples/s over all members"
      f"{' on ' + run['cpu'] if run.get('cpu') and run.get('platform') == 'cpu' else ''}.",
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
  test_rule = ("test labels are corrupted like each member's training labels "
               "(`corrupt_test_labels=True`)" if run.get("corrupt_test_labels")
               else "test labels are the true ones")
  lines += ["", "Train accuracy is measured on the full training set in eval mode, against "
            f"each member's own (possibly randomized) labels; {test_rule}. "
            "Curves: `curves.png`; every evaluation point: `metrics.jsonl`.", ""]
  if config is not None:
    diffs = protocol.differences(protocol.cifar10(config), config, summary)
    lines += ["Differences from the paper's CIFAR10 protocol (docs/PROTOCOL.md §1-4): "
              + (", ".join(diffs) if diffs else "none") + ".", ""]
  if run.get("metrics_lines_lost"):
    lines += [f"**metrics.jsonl is incomplete**: {run['metrics_lines_lost']} evaluation "
              "records were lost before a resume (the file was deleted or cut); the curves "
              "miss those points.", ""]
  return "\n".join(lines)


def unfinished_report(config: dict, history: list[dict]) -> str:
  """report.md of a run that has not finished (no summary.json): its last evaluation."""
  name = config.get("model", "?")
  if not history:
    return f"# Unfinished run ({name})\n\nNo evaluation point was recorded yet.\n"
  last = {}
  for r in history:
    last[r["member"]] = r
  epoch = max(r["epoch"] for r in last.values())
  lines = [f"# Unfinished run ({name} on {config.get('dataset', '?')})", "",
           f"**Not finished**: there is no summary.json yet; this is the last evaluation point "
           f"in metrics.jsonl, epoch {epoch}. Rerun the training command to resume.", "",
           "| member | train acc % | test acc % | train loss |", "|---|---:|---:|---:|"]
  for m in sorted(last):
    r = last[m]
    loss = "—" if r["train_loss"] is None else f"{r['train_loss']:.4f}"
    lines.append(f"| {r['label']} | {_pct(r['train_acc'])} | {_pct(r['test_acc'])} | "
                 f"{loss} |")
  return "\n".join(lines) + "\n"
