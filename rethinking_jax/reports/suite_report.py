"""Combined reports of a suite workdir in the paper's layout: Markdown, CSV and PNG figures.

Every report says which dataset was actually used, its size, the hardware and each deviation
from the paper; a smoke run says loudly that it is not the paper's experiment.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402

from rethinking_jax.engine import members as members_lib  # noqa: E402
from rethinking_jax.reports import files, paper, protocol, stats  # noqa: E402


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def load_suite(workdir: str) -> tuple[dict, dict]:
  """(suite config, {run name: {config, summary, metrics, finished}}) for the runs that
  finished, and for those stopped on the way (a time limit, a signal) with what they
  reached: their summary is provisional, built from their last evaluation point."""
  config = _read_json(os.path.join(workdir, "config.json"))
  runs = {}
  for name in config.get("runs", {}):
    sub = os.path.join(workdir, name)
    paths = {k: os.path.join(sub, f) for k, f in (("config", "config.json"),
                                                  ("summary", "summary.json"),
                                                  ("metrics", "metrics.jsonl"))}
    if not (os.path.exists(paths["config"]) and os.path.exists(paths["metrics"])):
      continue
    run_config = _read_json(paths["config"])
    metrics = files.read_jsonl(paths["metrics"])
    finished = os.path.exists(paths["summary"])
    if not finished and not metrics:
      continue
    summary = (_read_json(paths["summary"]) if finished
               else provisional_summary(name, run_config, metrics))
    runs[name] = {"config": run_config, "summary": summary, "metrics": metrics,
                  "finished": finished}
  return config, runs


def provisional_summary(name: str, run_config: dict, metrics: list[dict]) -> dict:
  """A summary of an unfinished run from its metrics: each member's last evaluation, the
  members' settings from the run's config (the same resolution the engine uses)."""
  specs = members_lib.from_config(ml_collections.ConfigDict(run_config))
  threshold = run_config.get("memorize_threshold", 1.0)
  members = []
  for m, spec in enumerate(specs):
    records = [r for r in metrics if r["member"] == m]
    last = records[-1] if records else {}
    reached = [r["step"] for r in records if (r["train_acc"] or 0) >= threshold]
    tests = [r["test_acc"] for r in records if r["test_acc"] is not None]
    members.append({
        **members_lib.describe(m, spec),
        **{k: last.get(k) for k in ("train_loss", "train_acc", "train_top5", "test_loss",
                                    "test_acc", "test_top5")},
        "best_test_acc": max(tests) if tests else None,
        "steps_to_memorize": reached[0] if reached else None,
        "diverged": bool(records) and last.get("train_loss") is None})
  epoch = max((r["epoch"] for r in metrics), default=0)
  return {"run": {"name": name, "model": run_config["model"], "epochs": epoch,
                  "stop": "unfinished",
                  "stop_reason": f"not finished: stopped at epoch {epoch}",
                  "wall_seconds": max((r.get("wall_time", 0) for r in metrics), default=0)},
          "members": members}


def members(runs: dict):
  """Every member of every run, with the run's model and transform attached."""
  for name, run in runs.items():
    for m in run["summary"]["members"]:
      yield {**m, "run": name, "model": run["config"]["model"],
             "transform": run["config"]["train_transform"],
             "dropout": run["config"].get("dropout_rate", 0.0) > 0}


def find_all(runs, model, transform=None, randomization=None, decayed=None, p=None,
             dropout=None) -> list[dict]:
  """Every member that trained a row of a paper table: one per seed."""
  return [m for m in members(runs)
          if (m["model"] == model and (transform is None or m["transform"] == transform)
              and (randomization is None or m["randomization"] == randomization)
              and (decayed is None or (m["weight_decay"] > 0) == decayed)
              and (p is None or abs(m["corruption_p"] - p) < 1e-9)
              and (dropout is None or m["dropout"] == dropout))]


def _pct(x):
  return "—" if x is None else f"{100 * x:.2f}"


def _diff(ours, theirs):
  if ours is None or theirs is None:
    return "—"
  return f"{round(100 * ours - theirs, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"


PAPER_DATASET = {"table2": "imagenet2012"}  # every other report: cifar10
PAPER_DATASET_NAMES = {"cifar10": "CIFAR10", "imagenet2012": "ImageNet (imagenet2012)"}


def header(title: str, config: dict, runs: dict) -> list[str]:
  lines = [f"# {title}", ""]
  if config.get("smoke"):
    lines += ["> **Smoke run** on a tiny synthetic stand-in: it checks that the suite runs end "
              "to end. Its numbers say nothing about the paper's experiment.", ""]
  done = [run for run in runs.values() if run["finished"]]
  unfinished = [name for name, run in runs.items() if not run["finished"]]
  if not runs:
    return lines + ["No run has finished yet.", ""]
  deviations = []
  if done:
    first = done[0]["summary"]["run"]
    dataset = first["dataset"]
    shown = ("CIFAR-10 (JPEG re-encoding)" if "cifar10" in dataset and "jpeg" in dataset
             else dataset)
    lines.append(f"Dataset: **{shown}**, "
                 f"{first['num_train']:,} train / {first['num_test']:,} test examples. "
                 f"Hardware: {first['devices']} × {first['device']} ({first['platform']}"
                 f"{', ' + first['cpu'] if first.get('cpu') else ''}), "
                 f"{first['processes']} process(es).")
    expected = PAPER_DATASET.get(config.get("report"), "cifar10")
    cifar_jpeg = shown == "CIFAR-10 (JPEG re-encoding)"
    if cifar_jpeg and expected == "cifar10":
      deviations.append("images are a JPEG (quality 75) re-encoding of CIFAR-10, not the "
                        "original release: pixel values differ slightly")
    elif (expected != "cifar10" and shown != expected) or (not cifar_jpeg
                                                            and dataset != expected):
      deviations.append(f"dataset is {shown}, not the paper's {PAPER_DATASET_NAMES[expected]}")
    batch = done[0]["config"].get("batch_size", 128)
    if first["num_train"] % batch:
      deviations.append(
          f"an epoch is {first['num_train'] // batch:,} steps of {batch}: each epoch's last "
          f"partial batch ({first['num_train'] % batch} images) is dropped (a fresh "
          "permutation every epoch, so every image is still seen; the paper does not say)")
    evaluated = first.get("train_eval_examples", first["num_train"])
    if evaluated < first["num_train"]:
      deviations.append(f"train accuracy is measured on a fixed random {evaluated:,} of the "
                        f"{first['num_train']:,} training images at each evaluation")
  else:
    lines.append(f"No run has finished yet; stopped on the way: {', '.join(unfinished)} "
                 "(their last evaluation is shown).")
  deviations += [f"`{name}` did not finish (a time limit or a signal stopped it at epoch "
                 f"{runs[name]['summary']['run']['epochs']}): its numbers are from there"
                 for name in unfinished]
  for name, run in runs.items():
    s = run["summary"]
    # The paper trains every CIFAR10 member to 100% train accuracy (Table 2: fixed schedule).
    memorizing = config.get("report") != "table2"
    diverged = [m["label"] for m in s["members"] if m.get("diverged")]
    if diverged:
      deviations.append(f"`{name}`: {', '.join(diverged)} diverged (training loss NaN/inf)")
    if memorizing and run["finished"]:
      open_members = [m["label"] for m in s["members"]
                      if m["steps_to_memorize"] is None and not m.get("diverged")]
      if open_members:
        deviations.append(f"`{name}` stopped at {s['run']['epochs']} epochs "
                          f"({s['run']['wall_seconds']:.0f} s) before "
                          f"{', '.join(open_members)} reached 100% train accuracy")
    if s["run"].get("metrics_lines_lost"):
      deviations.append(f"`{name}`: {s['run']['metrics_lines_lost']} evaluation records were "
                        "lost from its metrics.jsonl before a resume (curves have a gap)")
  deviations += _protocol_deviations(config.get("report"), runs)
  missing = [n for n in config.get("runs", {}) if n not in runs]
  if missing:
    deviations.append(f"runs not finished yet: {', '.join(missing)}")
  lines.append("")
  lines += ["Deviations from the paper: " + ("; ".join(deviations) + "." if deviations
                                              else "none recorded."), ""]
  return lines


def _protocol_deviations(report, runs) -> list[str]:
  """Every field in which the runs differ from the paper's protocol; said once when all
  runs share it."""
  per_run = {name: protocol.differences(report, run["config"], run["summary"])
             for name, run in runs.items()}
  shared = set.intersection(*map(set, per_run.values())) if per_run else set()
  out = []
  if shared:
    label = "every run" if len(per_run) > 1 else f"`{next(iter(per_run))}`"
    out.append(f"{label}: " + ", ".join(d for d in next(iter(per_run.values()))
                                         if d in shared))
  for name, diffs in per_run.items():
    own = [d for d in diffs if d not in shared]
    if own:
      out.append(f"`{name}`: {', '.join(own)}")
  return out


def _write_csv(path, rows, fields):
  with files.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)


def table1(workdir, runs) -> list[str]:
  rows, lines = [], ["| model | random crop | weight decay | labels | paper train | ours train "
                     "| Δ | paper test | ours test | Δ |", "|---|---|---|---|---:|---:|---:|"
                     "---:|---:|---:|"]
  for model, crop, wd, random, p_train, p_test in paper.TABLE1:
    ms = find_all(runs, model, "random_crop" if crop else "center_crop",
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
  _write_csv(os.path.join(workdir, "table1.csv"), rows, list(rows[0]))
  return ["## Table 1 — CIFAR10 train / test accuracy (%)", "", *lines, "",
          SEEDS_NOTE, "", "CSV: `table1.csv`.", ""]


SEEDS_NOTE = ("Ours: the mean over a row's members that differ only in their seed, "
              "± the standard deviation (number of seeds); one value where one seed ran.")


def table4(workdir, runs) -> list[str]:
  lines = ["| model | regularizer | paper train % | ours train % | Δ | steps to memorize |",
           "|---|---|---:|---:|---:|---:|"]
  rows = []
  for model, regularizer, p_train in paper.TABLE4:
    if regularizer == "weight decay":
      ms = find_all(runs, model, "center_crop", "random_labels", True)
    else:
      ms = find_all(runs, model, regularizer.replace(" ", "_"), "random_labels")
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
  _write_csv(os.path.join(workdir, "table4.csv"), rows, list(rows[0]))
  return ["## Table 4 — fitting random labels with explicit regularizers (train accuracy)",
          "", *lines, "", SEEDS_NOTE, "", "CSV: `table4.csv`.", ""]




def _fully_measured(metrics) -> list[dict]:
  """The records of points that measured the whole training split (eval_full_every > 1
  measures the others in part; records written before train_examples count as whole)."""
  whole = max((r.get("train_examples") or 0 for r in metrics), default=0)
  return [r for r in metrics if (r.get("train_examples") or whole) >= whole]


def _steps_to_reach(metrics, threshold) -> dict:
  """{member: first evaluated step with train accuracy >= threshold}.

  Only points that measured the whole training split count (eval_full_every > 1 measures
  the others in part): at threshold 1.0 that loses nothing, since a point where a member
  memorized is always measured in full; below it, steps are then those of full points."""
  out = {}
  for r in _fully_measured(metrics):
    if r["train_acc"] is not None and r["train_acc"] >= threshold and r["member"] not in out:
      out[r["member"]] = r["step"]
  return out


def _common_threshold(run) -> float:
  """1.0 when every member memorized, else the highest train accuracy every member reached
  at a fully measured point, rounded down to 0.1% (members of a sub-run still on the way do
  not count: they are shown as unfinished)."""
  members = {m["member"] for m in run["summary"]["members"] if not m.get("unfinished")}
  best = {}
  for r in _fully_measured(run["metrics"]):
    if r["member"] in members and r["train_acc"] is not None:
      best[r["member"]] = max(best.get(r["member"], 0.0), r["train_acc"])
  if not best or set(best) < members:
    return 1.0
  lowest = min(best.values())
  return 1.0 if lowest >= 1.0 else math.floor(lowest * 1000 + 1e-9) / 1000


def _by_member(metrics):
  out = defaultdict(list)
  for r in metrics:
    out[(r["member"], r["label"])].append(r)
  return sorted(out.items())


def _relative_by_seed(ms, reach, is_base) -> dict:
  """{member: its steps / the steps of the base member with the same seed}."""
  base = {m.get("seed", 0): reach.get(m["member"]) for m in ms if is_base(m)}
  return {m["member"]: reach[m["member"]] / base[m.get("seed", 0)] for m in ms
          if reach.get(m["member"]) and base.get(m.get("seed", 0))}


def _convergence_notes(name, run, threshold, interval, base_steps) -> list[str]:
  """What the convergence numbers of a run mean, said where they deviate from the paper."""
  notes = []
  if threshold < 1.0:
    notes.append(f"**{name}: not every member reached 100% train accuracy** in "
                 f"{run['summary']['run']['epochs']} epochs, so convergence is measured at the "
                 f"highest train accuracy all members reached ({100 * threshold:.1f}%, "
                 "rounded down to 0.1%), not at the paper's 100%")
  if base_steps:
    notes.append(f"{name}: evaluated every {interval} steps, so a step count is at most "
                 f"{interval} late and a ratio carries up to ±{200 * interval / base_steps:.1f}% "
                 "of rounding")
  return notes


def _figure1a_table(run) -> list[str]:
  """Figure 1a in numbers: when each input kind memorized (mean over seeds), relative to true
  labels of the same seed, and the order of convergence beside the paper's."""
  threshold = _common_threshold(run)
  interval = _eval_interval(run)
  reach = _steps_to_reach(run["metrics"], threshold)
  ms = run["summary"]["members"]
  relative = _relative_by_seed(ms, reach, lambda m: m["randomization"] == "true_labels")
  table = [f"(a) Steps to {100 * threshold:g}% train accuracy:", "",
           "| input | steps | relative to true labels | final train loss | test acc % |",
           "|---|---:|---:|---:|---:|"]
  kinds = list(dict.fromkeys(m["randomization"] for m in ms))
  mean_steps = {}
  for kind in kinds:
    group = [m for m in ms if m["randomization"] == kind]
    steps = [reach.get(m["member"]) for m in group]
    reached = [x for x in steps if x is not None]
    mean_steps[kind] = stats.summarize(reached)[0] if len(reached) == len(steps) else None
    steps_text = (stats.cell(reached, scale=1, digits=0) if reached else "not reached") + (
        f", {len(steps) - len(reached)} not reached" if reached and len(reached) < len(steps)
        else "")
    if any(m.get("unfinished") for m in group) and not reached:
      last = max((r for r in run["metrics"] if r["member"] in {m["member"] for m in group}),
                 key=lambda r: r["step"])
      steps_text = (f"not finished: {100 * last['train_acc']:.1f}% train accuracy at step "
                    f"{last['step']}")
    table.append(f"| {kind} | {steps_text} | "
                 f"{stats.cell([relative.get(m['member']) for m in group], scale=1)} | "
                 f"{stats.cell([m['train_loss'] for m in group], scale=1, digits=4)} | "
                 f"{stats.cell([m['test_acc'] for m in group])} |")
  done = sorted((k for k in kinds if mean_steps[k] is not None), key=mean_steps.get)
  on_the_way = [k for k in kinds if mean_steps[k] is None and any(
      m.get("unfinished") for m in ms if m["randomization"] == k)]
  never = [k for k in kinds if mean_steps[k] is None and k not in on_the_way]
  ours = (" < ".join(done) or "none converged") + (
      f" (not reached by every seed: {', '.join(never)})" if never else "") + (
      f" (still training: {', '.join(on_the_way)})" if on_the_way else "")
  base = mean_steps.get("true_labels")
  notes = _convergence_notes("(a)", run, threshold, interval, base)
  test = {k: stats.summarize([m["test_acc"] for m in ms if m["randomization"] == k])[0]
          for k in ("true_labels", "shuffled_pixels")}
  if run["summary"]["run"]["model"].startswith("mlp") and None not in test.values():
    notes.append(f"an MLP sees one fixed pixel permutation as a relabelling of its inputs, so "
                 f"shuffled pixels should test like true labels: "
                 f"{100 * test['shuffled_pixels']:.2f}% vs {100 * test['true_labels']:.2f}% "
                 f"({100 * (test['shuffled_pixels'] - test['true_labels']):+.2f} points)")
  return [*table, "", *[f"- {note}." for note in notes], "" if notes else "",
          f"Paper: {paper.FIGURE1A}. Ours, fastest first: {ours}.", ""]


def _eval_interval(run) -> int:
  """Steps between two evaluation points of a run (from its metrics)."""
  steps = sorted({r["step"] for r in run["metrics"]})
  return min((b - a for a, b in zip(steps, steps[1:], strict=False)), default=steps[0]
             if steps else 0)


# The panels of a report that sub-runs fill, declared by each sub-run's `panel` field (the
# suite's config says which run is which, the report never guesses from a name).
PANELS = {"figure1": ("a", "bc")}


def _panel(name: str, run) -> str:
  """A run's declared panel; a workdir written before the field existed: its name's prefix
  (the configs' names then: a_inception_small, bc_MODEL)."""
  declared = run["config"].get("panel")
  if declared is not None:
    return declared
  return next((p for p in PANELS["figure1"] if name.startswith(f"{p}_")), "")


def panel_runs(runs, panel: str) -> list[dict]:
  return [run for name, run in runs.items() if _panel(name, run) == panel]


def _run_of_model(runs, model: str):
  """The first of `runs` (run dicts) that trains `model`: from what it recorded, not from its
  name."""
  return next((run for run in runs if run["summary"]["run"]["model"] == model), None)


def _merged(runs: list[dict]) -> dict:
  """Runs of one model and panel as one run: their members one after another (a panel's
  input kinds trained as separate sub-runs, each until its own member memorized)."""
  if len(runs) == 1:
    return runs[0]
  members, metrics = [], []
  for run in runs:
    offset = len(members)
    members += [{**m, "member": m["member"] + offset,
                 **({} if run["finished"] else {"unfinished": True})}
                for m in run["summary"]["members"]]
    metrics += [{**r, "member": r["member"] + offset} for r in run["metrics"]]
  first = runs[0]["summary"]
  epochs = max(run["summary"]["run"]["epochs"] for run in runs)
  return {**runs[0], "metrics": metrics,
          "summary": {**first, "members": members, "run": {**first["run"], "epochs": epochs}}}


def panel_by_model(runs, panel: str) -> dict[str, dict]:
  """{model: its runs of `panel`, merged}, in the order the runs come."""
  grouped = defaultdict(list)
  for run in panel_runs(runs, panel):
    grouped[run["summary"]["run"]["model"]].append(run)
  return {model: _merged(group) for model, group in grouped.items()}


def figure1(workdir, runs) -> list[str]:
  lines = ["## Figure 1 — fitting random labels and random pixels", ""]
  a_runs = panel_by_model(runs, "a")
  fig, axes = plt.subplots(1, 2 + max(1, len(a_runs)), figsize=(5.3 * (2 + max(1, len(a_runs))),
                                                                4.5))
  for ax, (model, a) in zip(axes, a_runs.items(), strict=False):
    for (_, label), records in _by_member(a["metrics"]):
      points = [(r["step"], r["train_loss"]) for r in records if r["train_loss"]]
      if points:
        ax.plot(*zip(*points, strict=True), label=label)
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set(title=f"(a) training loss, {model}", xlabel="steps", ylabel="average loss")
    lines += [f"### (a) {model}", "", *_figure1a_table(a)]
  if not a_runs:
    axes[0].text(0.5, 0.5, "(a) not part of this run", ha="center", va="center",
                 transform=axes[0].transAxes)
    axes[0].set(title="(a) training loss", xlabel="steps", ylabel="average loss")
  ax_b, ax_c = axes[-2:]
  rows = []
  table = ["| model | p | convergence threshold | steps to reach it | relative to p = 0 | "
           "test error % (c) | paper test error % |",
           "|---|---:|---:|---:|---:|---:|---:|"]
  notes = []
  bc = panel_runs(runs, "bc")
  bc_by_model = panel_by_model(runs, "bc")  # one run per model, or one sub-run per level
  for model in paper.FIGURE1_MODELS:
    run = bc_by_model.get(model)
    if not run:
      continue
    own = [r for r in bc if r["summary"]["run"]["model"] == model]
    ms = run["summary"]["members"]
    threshold, interval = _common_threshold(run), _eval_interval(run)
    reach = _steps_to_reach(run["metrics"], threshold)
    relative = _relative_by_seed(ms, reach, lambda m: m["corruption_p"] == 0)
    levels = sorted({m["corruption_p"] for m in ms})
    curve = []
    for p in levels:
      group = [m for m in ms if m["corruption_p"] == p]
      steps = [reach.get(m["member"]) for m in group]
      reached = [x for x in steps if x is not None]
      rel = [relative.get(m["member"]) for m in group]
      err = [None if m["test_acc"] is None else 1 - m["test_acc"] for m in group]
      paper_err = paper.FIGURE1C[model][0] if p == 0 else (
          paper.FIGURE1C[model][1] if p == 1 else None)
      steps_text = stats.cell(reached, scale=1, digits=0) if reached else "not reached"
      table.append(f"| {model} | {p:g} | {100 * threshold:g}% | {steps_text} | "
                   f"{stats.cell(rel, scale=1)} | {stats.cell(err)} | "
                   f"{'—' if paper_err is None else f'{paper_err:.2f}'} |")
      rows.append({"model": model, "p": p, "threshold": threshold, "eval_interval": interval,
                   **stats.csv_fields("steps", reached, scale=1),
                   **stats.csv_fields("relative_convergence_time", rel, scale=1),
                   **stats.csv_fields("test_error", err)})
      curve.append((p, stats.summarize(rel), stats.summarize(err)))
    base = stats.summarize([reach.get(m["member"]) for m in ms if m["corruption_p"] == 0])[0]
    notes += _convergence_notes(model, run, threshold, interval, base)
    end = run["summary"]["run"]
    if all(len(r["summary"]["members"]) == 1 and r["summary"]["run"].get("stop") == "memorized"
           for r in own):
      notes.append(f"{model}: one sub-run per level, each stopped when its member memorized: "
                   "(c)'s test errors are at each member's own convergence")
    else:
      notes.append(f"{model}: (c)'s test errors are those at the end of the run (epoch "
                   f"{end['epochs']}, {end['stop_reason']}), not at each member's own "
                   "convergence: a member that converged earlier trained on until then")
    label = model if threshold == 1.0 else f"{model} (to {100 * threshold:g}% train acc.)"
    points = [(p, r) for p, r, _ in curve if r[2]]
    if points:
      ax_b.errorbar([p for p, _ in points], [r[0] for _, r in points],
                       yerr=[r[1] for _, r in points], marker="o", capsize=3, label=label)
    points = [(p, e) for p, _, e in curve if e[2]]
    if points:
      ax_c.errorbar([p for p, _ in points], [100 * e[0] for _, e in points],
                       yerr=[100 * e[1] for _, e in points], marker="o", capsize=3,
                       label=model)
  ax_b.set(title="(b) relative convergence time", xlabel="label corruption p",
              ylabel="steps to converge / steps at p = 0")
  ax_c.set(title="(c) test error after convergence", xlabel="label corruption p",
              ylabel="test error (%)")
  for ax in fig.axes:
    ax.grid(alpha=0.3)
  for ax in (ax_b, ax_c):
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=8)
  fig.tight_layout()
  files.save_figure(fig, os.path.join(workdir, "figure1.png"), dpi=110)
  plt.close(fig)
  if rows:
    _write_csv(os.path.join(workdir, "figure1.csv"), rows, list(rows[0]))
  if not rows:
    return lines + ["![Figure 1](figure1.png)", "", "(b, c): not part of this run.", ""]
  return lines + ["![Figure 1](figure1.png)", "", *table, "",
                  *[f"- {note}." for note in notes], "" if notes else "",
                  f"{SEEDS_NOTE} Relative convergence times pair each member with the p = 0 "
                  "member of its own seed; error bars: ± one standard deviation over seeds.",
                  "", f"Paper: {paper.FIGURE1B}. Paper test errors at p = 0 and p = 1 are "
                  "Table 1's no-regularizer and random-label rows. CSV: `figure1.csv`.", ""]


def _accuracy_panel(ax, records, title, metric="acc"):
  """Train and test accuracy against steps, the gap to the running best test shaded."""
  steps = [r["step"] for r in records]
  test = [r[f"test_{metric}"] or 0.0 for r in records]
  best = [max(test[:i + 1]) for i in range(len(test))]
  ax.plot(steps, [r[f"train_{metric}"] or 0.0 for r in records], label="train")
  ax.plot(steps, test, label="test")
  ax.fill_between(steps, test, best, alpha=0.3, label="running best test")
  ax.set(title=title, xlabel="steps", ylabel="accuracy" if metric == "acc" else "top-5")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)


def _member_records(run, member: int):
  return [r for r in run["metrics"] if r["member"] == member]


def figure2(workdir, runs) -> list[str]:
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
  table = ["| model | final train % | final test % | best test % (early stopping) |",
           "|---|---:|---:|---:|"]
  for ax, model in zip(axes, paper.FIGURE2_MODELS, strict=True):
    run = _run_of_model(runs.values(), model)
    ax.set(title=model, xlabel="steps", ylabel="accuracy")
    ax.grid(alpha=0.3)
    if not run:
      continue
    _accuracy_panel(ax, _member_records(run, 0), model)  # the first seed's curves
    ms = [m for m in run["summary"]["members"] if m["randomization"] == "true_labels"]
    table.append(f"| {model} | {stats.cell([m['train_acc'] for m in ms])} | "
                 f"{stats.cell([m['test_acc'] for m in ms])} | "
                 f"{stats.cell([m['best_test_acc'] for m in ms])} |")
  fig.tight_layout()
  files.save_figure(fig, os.path.join(workdir, "figure2.png"), dpi=110)
  plt.close(fig)
  return ["## Figure 2b — implicit regularization: batch-norm and early stopping", "",
          "![Figure 2](figure2.png)", "", *table, "", SEEDS_NOTE + " Curves: the first seed.",
          "", f"Paper: {paper.FIGURE2}.", ""]


def _best(run, member: int, key: str):
  values = [r[key] for r in _member_records(run, member) if r.get(key) is not None]
  return max(values) if values else None


def table2(workdir, runs) -> list[str]:
  """Table 2 (top-1/top-5, train/test, best test) and Figure 2a (the true-label rows)."""
  def cell(ours, theirs):
    return f"{'—' if theirs is None else f'{theirs:.2f}'} / {stats.cell(ours)}"

  lines = ["Each cell: paper / ours (%). Best: the highest test accuracy at any evaluation "
           "(what early stopping could gain).", "",
           "| aug | dropout | wd | labels | top-1 train | top-5 train | top-1 test | "
           "top-5 test | best top-1 test | best top-5 test |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
  names = ("top1_train", "top5_train", "top1_test", "top5_test", "best_top1_test",
           "best_top5_test")
  yes = lambda flag: "yes" if flag else "no"
  rows, panels = [], []
  for aug, dropout, wd, random, *values in paper.TABLE2:
    ms = find_all(runs, "inception_v3", "augment" if aug else "center_crop",
                  "random_labels" if random else "true_labels", wd, dropout=dropout)
    ours = [[m["train_acc"] for m in ms], [m.get("train_top5") for m in ms],
            [m["test_acc"] for m in ms], [m.get("test_top5") for m in ms],
            [_best(runs[m["run"]], m["member"], "test_acc") for m in ms],
            [_best(runs[m["run"]], m["member"], "test_top5") for m in ms]]
    lines.append(f"| {yes(aug)} | {yes(dropout)} | {yes(wd)} | "
                 f"{'random' if random else 'true'} | "
                 + " | ".join(cell(o, t) for o, t in zip(ours, values, strict=True)) + " |")
    row = {"aug": aug, "dropout": dropout, "weight_decay": wd, "random_labels": random,
           **{f"paper_{k}": v for k, v in zip(names, values, strict=True)}}
    for k, v in zip(names, ours, strict=True):
      row.update(stats.csv_fields(f"ours_{k}", v))
    rows.append(row)
    if ms and not random:
      panels.append((f"aug={yes(aug)} dropout={yes(dropout)} wd={yes(wd)}",
                     _member_records(runs[ms[0]["run"]], ms[0]["member"])))
  _write_csv(os.path.join(workdir, "table2.csv"), rows, list(rows[0]))
  figure = []
  if panels:
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), sharey=True,
                             squeeze=False)
    for ax, (title, records) in zip(axes[0], panels, strict=True):
      _accuracy_panel(ax, records, title)
    fig.suptitle("Figure 2a — Inception V3: top-1 accuracy, shaded: running best test")
    fig.tight_layout()
    files.save_figure(fig, os.path.join(workdir, "figure2a.png"), dpi=110)
    plt.close(fig)
    figure = ["## Figure 2a — implicit regularization on ImageNet", "",
              "![Figure 2a](figure2a.png)", "", f"Paper: {paper.FIGURE2A}.", ""]
  return ["## Table 2 — ImageNet, Inception V3: top-1 / top-5 accuracy (%)", "", *lines, "",
          "CSV: `table2.csv`.", "", *figure]


RADEMACHER_FRACTIONS = (0.125, 0.25, 0.5)  # of the run's steps: the estimate under early stopping


def rademacher_estimates(run) -> dict:
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


def rademacher(workdir, runs) -> list[str]:
  lines = ["## Empirical Rademacher complexity (the paper's section 2.2)", "",
           "Each member fits its own uniformly random ±1 labels of the same training inputs; "
           "its estimate is the correlation of its fitted outputs with them, "
           "(1/n) Σᵢ σᵢ f(xᵢ) = 2 × train accuracy − 1 (1: the labelling was fitted, 0: "
           "chance). Mean ± standard deviation over the members (N). "
           "The paper: ≈ 1 for the networks it trains, so Rademacher bounds say nothing.", "",
           "| run | model | weight decay | epochs | estimate at the end | "
           + " | ".join(f"at {f:g} of the steps (early stopping)" for f in RADEMACHER_FRACTIONS)
           + " |", "|---|---|---:|---:|---:|" + "---:|" * len(RADEMACHER_FRACTIONS)]
  fig, ax = plt.subplots(figsize=(8, 4.5))
  csv_rows = []
  for name, run in runs.items():
    by_step = rademacher_estimates(run)
    if not by_step:
      continue
    steps = list(by_step)
    decays = sorted({m["weight_decay"] for m in run["summary"]["members"]})
    at = [by_step[min(steps, key=lambda s, f=f: abs(s - f * steps[-1]))]
          for f in RADEMACHER_FRACTIONS]
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
  _write_csv(os.path.join(workdir, "rademacher.csv"), csv_rows,
             ["run", "model", "step", "estimate", "estimate_sd", "estimate_n"])
  return [*lines, "", "![Rademacher estimate](rademacher.png)", "",
          "CSV: `rademacher.csv` (every evaluation point).", ""]


SECTIONS = {"table1": ("Table 1", table1), "table2": ("Table 2", table2),
            "rademacher": ("Empirical Rademacher complexity", rademacher),
            "table4": ("Table 4", table4),
            "figure1": ("Figure 1", figure1), "figure2": ("Figure 2", figure2)}


def write(workdir: str) -> str:
  """Writes WORKDIR/report.md (and the CSV/PNG files) for a suite workdir; returns its path."""
  config, runs = load_suite(workdir)
  title, section = SECTIONS.get(config.get("report"), ("Suite", None))
  lines = header(f"{title} — Zhang et al. (ICLR 2017), reproduced", config, runs)
  if section is not None and runs:
    lines += section(workdir, runs)
  lines += ["## Runs", "", "| run | model | members | epochs | stop | wall s |",
            "|---|---|---:|---:|---|---:|"]
  for name, run in runs.items():
    r = run["summary"]["run"]
    lines.append(f"| [{name}]({name}/report.md) | {r['model']} | "
                 f"{len(run['summary']['members'])} | {r['epochs']} | {r['stop_reason']} | "
                 f"{r['wall_seconds']:.1f} |")
  path = os.path.join(workdir, "report.md")
  files.write_text(path, "\n".join(lines) + "\n")
  return path
