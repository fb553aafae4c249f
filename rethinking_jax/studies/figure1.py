"""Figure 1: fitting random labels and random pixels on CIFAR10 (docs/PROTOCOL.md §5).

(a) small Inception on true labels, random labels, shuffled pixels, random pixels and
Gaussian noise: training loss against steps. (b) relative convergence time and (c) test
error after convergence, for label corruption p in {0, 0.2, ..., 1}, for small Inception,
AlexNet and MLP 1x512 -- each model's corruption levels are the members of one run.
No regularizers.

Panel (a) also for the MLP 1x512 (one run, five members: on the CPU none memorizes early, so
they all train to the cap) and the small AlexNet, one run per input kind
(`a_alexnet_small_KIND`, selected together by `figure1.py:a_alexnet_small`): each stops when
its own member memorized, where one five-member run would train every member until the
slowest one memorized. The report puts a model's panel-(a) runs back together.

Panels (b, c) likewise for the small AlexNet on the CPU, one run per corruption level
(`bc_alexnet_small_pPERCENT`, selected together by `figure1.py:bc_alexnet_small_p`): each member
stops at its own convergence, so (c)'s test error is measured there, and the six cost the
sum of their steps rather than six times the slowest's. `bc_alexnet_small` is the one-run
form (a GPU trains its members at once).
"""

from __future__ import annotations

import os

from rethinking_jax.reports import (
  convergence,
  files,
  panels,
  plots,
  stats,
  style,
  suite_report,
)
from rethinking_jax.reports.style import plt
from rethinking_jax.studies.study import Study

# The models the figure draws, in the paper's order.
MODELS = ("inception_small", "alexnet_small", "mlp_1x512")
LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
KINDS = ("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")
# The panels its sub-runs fill (each run's `panel` field).
PANELS = ("a", "bc")

# (c): test error after convergence at p = 0 (Table 1, no regularizers) and p = 1 (%).
PAPER_TEST_ERROR = {"inception_small": (14.25, 90.22), "alexnet_small": (23.93, 90.14),
                    "mlp_1x512": (49.49, 89.39)}
# (a): the order in which the small Inception's training loss reaches ~0 (docs/PROTOCOL.md §5).
PAPER_A = ("every input reaches ~0 training loss; random labels start converging latest; "
           "order true < shuffled < Gaussian ~ random pixels < random labels")
PAPER_B = ("convergence time grows with p by a small constant factor, about 1.5-3.5x at "
           "p = 1 (read off the paper's Figure 1b)")


def runs() -> dict:
  out = {f"a_{model}": dict(model=model, panel="a", randomizations=",".join(KINDS))
         for model in ("inception_small", "mlp_1x512")}
  for kind in KINDS:
    out[f"a_alexnet_small_{kind}"] = dict(model="alexnet_small", panel="a", randomizations=kind)
  for model in MODELS:
    out[f"bc_{model}"] = dict(
        model=model, panel="bc",
        randomizations=",".join(f"corrupt_labels:{p:g}" for p in LEVELS))
  for p in LEVELS:
    out[f"bc_alexnet_small_p{round(100 * p)}"] = dict(model="alexnet_small", panel="bc",
                                                      randomizations=f"corrupt_labels:{p:g}")
  return out


def order_of_kinds(ms, reach, after) -> tuple[list[list[str]], list[int]]:
  """The input kinds fastest first, over the seeds in which every kind's member reached the
  threshold: ([groups], [those seeds]). A crossing is known only to lie after `after[member]`
  (the last evaluation point before it; convergence.crossing_windows) and by
  `reach[member]`. Kinds share a group where the order between them is not resolved -- in
  some such seed the later one's window does not begin after the earlier one's crossing was
  seen (with one cadence: it reached it less than one evaluation interval later), or it
  reached it first."""
  kinds = list(dict.fromkeys(m["randomization"] for m in ms))
  steps, since = {}, {}  # (kind, seed) -> steps to the threshold, the step it came after
  for m in ms:
    steps[(m["randomization"], m.get("seed", 0))] = reach.get(m["member"])
    since[(m["randomization"], m.get("seed", 0))] = after.get(m["member"])
  seeds = sorted({seed for _, seed in steps})
  complete = [s for s in seeds if all(steps.get((k, s)) is not None for k in kinds)]
  if not complete:
    return [], []
  mean = {k: sum(steps[(k, s)] for s in complete) / len(complete) for k in kinds}
  groups: list[list[str]] = []
  for kind in sorted(kinds, key=lambda k: (mean[k], kinds.index(k))):
    resolved = groups and all(since[(kind, s)] >= steps[(g, s)]
                              for g in groups[-1] for s in complete)
    if groups and not resolved:
      groups[-1].append(kind)
    else:
      groups.append([kind])
  return groups, complete


def _panel_a_table(run) -> list[str]:
  """Figure 1a in numbers: when each input kind memorized (mean over seeds), relative to true
  labels of the same seed, and the order of convergence beside the paper's. Members still
  training are named as such and left out of the means."""
  threshold = convergence.common_threshold(run)
  windows = convergence.crossing_windows(run["metrics"], threshold)
  reach = {member: at for member, (_, at) in windows.items()}
  ms = run["summary"]["members"]
  relative = convergence.relative_by_seed(ms, reach, lambda m: m["randomization"] == "true_labels")
  table = [f"(a) Steps to {100 * threshold:g}% train accuracy:", "",
           "| input | steps | relative to true labels | final train loss | test acc % |",
           "|---|---:|---:|---:|---:|"]
  kinds = list(dict.fromkeys(m["randomization"] for m in ms))
  training = {}  # kind -> its members still training
  for kind in kinds:
    group = [m for m in ms if m["randomization"] == kind]
    training[kind] = [m for m in group if m.get("unfinished")]
    done = [m for m in group if not m.get("unfinished")]
    reached = [reach[m["member"]] for m in done if reach.get(m["member"]) is not None]
    steps_text = stats.cell(reached, scale=1, digits=0) if reached else (
        "not reached" if done else "")
    if len(reached) < len(done) and reached:
      steps_text += f", {len(done) - len(reached)} not reached"
    if training[kind]:
      ids = {m["member"] for m in training[kind]}
      last = max((r for r in run["metrics"] if r["member"] in ids), key=lambda r: r["step"])
      on_the_way = (f"not finished: {100 * last['train_acc']:.1f}% train accuracy at step "
                    f"{last['step']}")
      seeds_training = ", ".join(str(m.get("seed", 0)) for m in training[kind])
      steps_text = (f"{steps_text}; seed {seeds_training} still training" if steps_text
                    else on_the_way)
    table.append(f"| {kind} | {steps_text} | "
                 f"{stats.cell([relative.get(m['member']) for m in done], scale=1)} | "
                 f"{stats.cell([m['train_loss'] for m in done], scale=1, digits=4)} | "
                 f"{stats.cell([m['test_acc'] for m in done])} |")
  finished = [m for m in ms if not m.get("unfinished")]
  groups, seeds = order_of_kinds(finished, reach,
                                 {member: after for member, (after, _) in windows.items()})
  # the evaluation interval before each crossing: one cadence, or (finest, coarsest)
  widths = sorted({at - after for member, (after, at) in windows.items()
                   if member in {m["member"] for m in finished}}) or [0]
  interval = widths[0] if len(widths) == 1 else (widths[0], widths[-1])
  placed = {k for g in groups for k in g}
  unplaced = [k for k in kinds if k not in placed]
  on_the_way = [k for k in unplaced if training[k]]
  never = [k for k in unplaced if not training[k]]
  ours = " < ".join(" ≈ ".join(g) for g in groups) or "none converged"
  if groups and len({m.get("seed", 0) for m in ms}) > 1:
    ours += f" (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})"
  ours += (f" (not reached by every seed: {', '.join(never)})" if never else "") + (
      f" (still training: {', '.join(on_the_way)})" if on_the_way else "")
  if any(len(g) > 1 for g in groups):
    within = (f"within one evaluation interval ({interval} steps) of each other" if
              isinstance(interval, int) else "one seen before the other's evaluation interval "
              f"began (evaluated every {interval[0]} to {interval[1]} steps)")
    ours += f"; ≈: not resolved, {within} or in another order, in some seed"
  base = stats.summarize([reach.get(m["member"]) for m in finished
                          if m["randomization"] == "true_labels"])[0]
  notes = convergence.notes("(a)", run, threshold, interval, base)
  test = {k: stats.summarize([m["test_acc"] for m in finished if m["randomization"] == k])[0]
          for k in ("true_labels", "shuffled_pixels")}
  if run["summary"]["run"]["model"].startswith("mlp") and None not in test.values():
    notes.append(f"an MLP sees one fixed pixel permutation as a relabelling of its inputs, so "
                 f"shuffled pixels should test like true labels: "
                 f"{100 * test['shuffled_pixels']:.2f}% vs {100 * test['true_labels']:.2f}% "
                 f"({100 * (test['shuffled_pixels'] - test['true_labels']):+.2f} points)")
  return [*table, "", *[f"- {note}." for note in notes], "" if notes else "",
          f"Paper: {PAPER_A}. Ours, fastest first: {ours}.", ""]


def _draw_a(ax, model: str, run) -> None:
  """(a): each member's training loss against steps, one colour per input kind (members of
  one kind: its seeds), on a linear axis from 0 to above where the curves start."""
  key = plots.training_loss_key(run["metrics"])
  labelled, starts = set(), []
  kind_of = {m["member"]: m["randomization"] for m in run["summary"]["members"]}
  order = lambda item: (KINDS.index(kind_of.get(item[0][0], "")) if kind_of.get(item[0][0])
                        in KINDS else len(KINDS), item[0][0])  # the legend in the paper's order
  for (member, _), records in sorted(convergence.by_member(run["metrics"]), key=order):
    points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    if not points:
      continue
    kind = kind_of.get(member, "")
    ax.plot(*zip(*points, strict=True), color=style.kind_colour(kind), lw=1.2,
            label=None if kind in labelled else kind.replace("_", " "))
    labelled.add(kind)
    starts.append(points[0][1])
  top = 1.15 * max([*starts, 2.5])
  clipped = any(r.get(key) is not None and r[key] > top for r in run["metrics"])
  ax.set_ylim(0, top)
  what = ("training loss (train mode, interval mean)" if key ==
          "minibatch_loss" else "eval-mode loss on the training set")
  ax.set(title=f"(a) {model}", xlabel="thousand steps", ylabel=what)
  ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:g}")
  if clipped:
    ax.text(0.98, 0.98, "spikes clipped at the top", transform=ax.transAxes, ha="right",
            va="top", fontsize=7, color="#555555",
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.85, pad=1.5))
  ax.legend(fontsize=8)


def _draw_bc(ax_b, ax_c, curves) -> None:
  """(b) and (c): each model's mean over seeds against p, ± one standard deviation."""
  for model, label, curve in curves:
    look = dict(color=style.model_colour(model), marker=style.model_marker(model), capsize=3,
                label=label)
    points = [(p, r) for p, r, _ in curve if r[2]]
    if points:
      ax_b.errorbar([p for p, _ in points], [r[0] for _, r in points],
                    yerr=[r[1] for _, r in points], **look)
    points = [(p, e) for p, _, e in curve if e[2]]
    if points:
      ax_c.errorbar([p for p, _ in points], [100 * e[0] for _, e in points],
                    yerr=[100 * e[1] for _, e in points], **{**look, "label": model})
  ax_b.set(title="(b) relative convergence time", xlabel="label corruption p",
           ylabel="steps to converge / steps at p = 0")
  ax_c.set(title="(c) test error after convergence", xlabel="label corruption p",
           ylabel="test error (%)")
  for ax in (ax_b, ax_c):
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=8)


def figure(a_runs: dict, curves: list):
  """One figure of the panels there is data for -- (a) per model with panel-(a) runs, then
  (b) and (c) when some model has corruption levels; None when there is nothing to draw."""
  count = len(a_runs) + (2 if curves else 0)
  if not count:
    return None
  fig, axes = plt.subplots(1, count, figsize=(5.0 * count, 4.3), squeeze=False)
  axes = list(axes[0])
  for ax, (model, run) in zip(axes, a_runs.items(), strict=False):
    _draw_a(ax, model, run)
  if curves:
    _draw_bc(*axes[-2:], curves)
  for ax in axes:
    ax.grid(alpha=0.3)
  fig.tight_layout()
  return fig


def draw(workdir: str, a_runs: dict, curves: list) -> bool:
  """figure1.png and figure1.pdf (see `figure`); False, and no file, when there is nothing
  to draw."""
  fig = figure(a_runs, curves)
  if fig is None:
    return False
  for ext in ("png", "pdf"):
    files.save_figure(fig, os.path.join(workdir, f"figure1.{ext}"), dpi=110)
  plt.close(fig)
  return True


def section(workdir, runs) -> list[str]:
  lines = ["## Figure 1 — fitting random labels and random pixels", ""]
  a_runs = panels.panel_by_model(runs, "a", PANELS)
  # The paper's own network first, as in its panel (a).
  a_runs = dict(sorted(a_runs.items(), key=lambda kv: MODELS.index(kv[0])
                       if kv[0] in MODELS else len(MODELS)))
  a_lines = []
  for model, a in a_runs.items():
    a_lines += [f"### (a) {model}", "", *_panel_a_table(a)]
  rows, curves, notes = [], [], []
  table = ["| model | p | convergence threshold | steps to reach it | relative to p = 0 | "
           "test error % (c) | paper test error % |",
           "|---|---:|---:|---:|---:|---:|---:|"]
  bc = panels.panel_runs(runs, "bc", PANELS)
  bc_by_model = panels.panel_by_model(runs, "bc", PANELS)  # one run per model or per level
  for model in MODELS:
    run = bc_by_model.get(model)
    if not run:
      continue
    own = [r for r in bc if r["summary"]["run"]["model"] == model]
    # members still training (a level's next seed) join neither rows, curve nor legend
    ms = [m for m in run["summary"]["members"] if not m.get("unfinished")]
    threshold, interval = convergence.common_threshold(run), convergence.eval_interval(run)
    reach = convergence.steps_to_reach(run["metrics"], threshold)
    relative = convergence.relative_by_seed(ms, reach, lambda m: m["corruption_p"] == 0)
    levels = sorted({m["corruption_p"] for m in ms})
    curve = []
    for p in levels:
      group = [m for m in ms if m["corruption_p"] == p]
      steps = [reach.get(m["member"]) for m in group]
      reached = [x for x in steps if x is not None]
      rel = [relative.get(m["member"]) for m in group]
      err = [None if m["test_acc"] is None else 1 - m["test_acc"] for m in group]
      paper_err = PAPER_TEST_ERROR[model][0] if p == 0 else (
          PAPER_TEST_ERROR[model][1] if p == 1 else None)
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
    notes += convergence.notes(model, run, threshold, interval, base)
    end = run["summary"]["run"]
    if all(len(r["summary"]["members"]) == 1 and r["summary"]["run"].get("stop") == "memorized"
           for r in own if r.get("finished", True)):  # one still training says nothing yet
      notes.append(f"{model}: one sub-run per level, each stopped when its member memorized: "
                   "(c)'s test errors are at each member's own convergence")
    else:
      notes.append(f"{model}: (c)'s test errors are those at the end of the run (epoch "
                   f"{end['epochs']}, {end['stop_reason']}), not at each member's own "
                   "convergence: a member that converged earlier trained on until then")
    label = model if threshold == 1.0 else f"{model} (to {100 * threshold:g}% train acc.)"
    per_level = sorted({len({m.get("seed") for m in ms if m["corruption_p"] == p})
                        for p in levels})  # seeds per level: a level may have fewer so far
    seeds_text = (f"{per_level[0]}" if len(per_level) == 1 else
                  f"{per_level[0]}-{per_level[-1]}")
    curves.append((model, f"{label}, {seeds_text} seed{'s' * (per_level[-1] > 1)}", curve))
  drawn = draw(workdir, a_runs, curves)
  shown = (["![Figure 1](figure1.png)", "", _caption(a_runs, curves), ""] if drawn else [])
  if rows:
    suite_report.write_csv(os.path.join(workdir, "figure1.csv"), rows, list(rows[0]))
  if not rows:
    return lines + shown + a_lines + ["(b, c): not part of this run.", ""]
  return lines + shown + a_lines + [
      "### (b, c)", "", *table, "", *[f"- {note}." for note in notes], "" if notes else "",
      f"{suite_report.SEEDS_NOTE} Relative convergence times pair each member with "
      "the p = 0 member of its own seed.",
      "", f"Paper: {PAPER_B}. Paper test errors at p = 0 and p = 1 are "
      "Table 1's no-regularizer and random-label rows. CSV: `figure1.csv`.", ""]


def _caption(a_runs: dict, curves: list) -> str:
  """What the figure's panels plot, in one paragraph (the report's caption under it)."""
  parts = []
  for model, run in a_runs.items():
    train_mode = plots.training_loss_key(run["metrics"]) == "minibatch_loss"
    what = ("the training loss in train mode, averaged over the SGD steps of each evaluation "
            "interval (the paper's quantity)" if train_mode
            else "the eval-mode loss on the training set (this run predates the train-mode "
            "record; batch-norm models spike while their running statistics catch up)")
    seeds = len({m.get("seed") for m in run["summary"]["members"]})
    parts.append(f"(a) {model}: {what}, one line per member, one colour per input kind "
                 f"({seeds} seed{'s' * (seeds > 1)})")
  if curves:
    parts.append("(b, c): mean over seeds, error bars ± one standard deviation over seeds "
                 "(none with one seed); (b) pairs each member with the p = 0 member of its "
                 "own seed")
  return "Figure 1. " + "; ".join(parts) + "."


def combined(workdir: str, sources: list[str]) -> str:
  """Figure 1 as one figure from the runs of several suite workdirs (e.g. panel (a)'s
  Inception runs and panels (b, c)'s runs of each model): WORKDIR/figure1.png, .pdf, .csv
  and report.md, which names its sources. Returns the report's path."""
  runs = suite_report.with_sources(workdir, {}, sources)
  os.makedirs(workdir, exist_ok=True)
  lines = ["# Figure 1 — Zhang et al. (ICLR 2017), from several runs", "",
           "Drawn by `python -m rethinking_jax.report --workdir=" + workdir + " --sources="
           + ",".join(sources) + "` from:", "",
           *[f"- `{source}` ([its report]({os.path.relpath(source, workdir)}/report.md))"
             for source in sources], "", *section(workdir, runs)[2:]]
  path = os.path.join(workdir, "report.md")
  files.write_text(path, "\n".join(lines) + "\n")
  return path


STUDY = Study(name="figure1", title="Figure 1", seed_offset=100, runs=runs, section=section,
              panels=PANELS)
