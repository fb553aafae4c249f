"""When members converged, read from a run's metrics: the paper's "100% train accuracy at
the first step where it holds", or the highest accuracy every member reached when not all
did (said loudly where it is used)."""

from __future__ import annotations

import math
from collections import defaultdict


def fully_measured(metrics) -> list[dict]:
  """The records of points that measured the whole training split (eval_full_every > 1
  measures the others in part; records written before train_examples count as whole)."""
  whole = max((r.get("train_examples") or 0 for r in metrics), default=0)
  return [r for r in metrics if (r.get("train_examples") or whole) >= whole]


def steps_to_reach(metrics, threshold) -> dict:
  """{member: first evaluated step with train accuracy >= threshold}.

  Only points that measured the whole training split count (eval_full_every > 1 measures
  the others in part): at threshold 1.0 that loses nothing, since a point where a member
  memorized is always measured in full; below it, steps are then those of full points."""
  out = {}
  for r in fully_measured(metrics):
    if r["train_acc"] is not None and r["train_acc"] >= threshold and r["member"] not in out:
      out[r["member"]] = r["step"]
  return out


def crossing_windows(metrics, threshold) -> dict:
  """{member: (after, at)}: the member first reached `threshold` after step `after` (the
  last point that showed it below; 0 if none did) and by step `at` (steps_to_reach). A run
  resumed at a finer evaluation cadence narrows the window from there on. At 100% every
  point shows a member below (a point measuring part of the split stops at its first error);
  below 100%, only the points that measured the whole split."""
  whole = fully_measured(metrics)
  measured = metrics if threshold >= 1.0 else whole
  out = {}
  for member, at in steps_to_reach(metrics, threshold).items():
    below = [r["step"] for r in measured if r["member"] == member and r["step"] < at
             and r["train_acc"] is not None and r["train_acc"] < threshold]
    out[member] = (max(below, default=0), at)
  return out


# Below 100%, a threshold counts only where every member crossed it within this share of the
# run's steps: a member that crosses it at the cap measures the cap, not its speed (MLP 1x512's
# Figure 1b at 98.2%, reached by its p = 1 members at 29,965 of 31,200 steps, gave 3.03x;
# at 95% 2.27x).
BEFORE_CAP = 0.75


def common_threshold(run, before_cap: float = BEFORE_CAP) -> float:
  """1.0 when every member memorized, else the highest train accuracy every member reached
  at a fully measured point within the first `before_cap` of the run's steps, rounded down
  to 0.1% (members of a sub-run still on the way do not count: they are shown as
  unfinished)."""
  members = {m["member"] for m in run["summary"]["members"] if not m.get("unfinished")}
  measured = [r for r in fully_measured(run["metrics"])
              if r["member"] in members and r["train_acc"] is not None]
  memorized = {r["member"] for r in measured if r["train_acc"] >= 1.0}
  if not measured or memorized >= members:
    return 1.0
  last = max(r["step"] for r in measured)
  best = {}
  for r in measured:
    if r["step"] <= before_cap * last:
      best[r["member"]] = max(best.get(r["member"], 0.0), r["train_acc"])
  if set(best) < members:
    return 1.0
  return math.floor(min(best.values()) * 1000 + 1e-9) / 1000


def by_member(metrics):
  """[((member, label), its records)], in member order."""
  out = defaultdict(list)
  for r in metrics:
    out[(r["member"], r["label"])].append(r)
  return sorted(out.items())


def relative_by_seed(ms, reach, is_base) -> dict:
  """{member: its steps / the steps of the base member with the same seed}."""
  base = {m.get("seed", 0): reach.get(m["member"]) for m in ms if is_base(m)}
  return {m["member"]: reach[m["member"]] / base[m.get("seed", 0)] for m in ms
          if reach.get(m["member"]) and base.get(m.get("seed", 0))}


def notes(name, run, threshold, interval, base_steps) -> list[str]:
  """What the convergence numbers of a run mean, said where they deviate from the paper."""
  out = []
  if threshold < 1.0:
    at_all = common_threshold(run, before_cap=1.0)
    out.append(f"**{name}: not every member reached 100% train accuracy** in "
               f"{run['summary']['run']['epochs']} epochs, so convergence is measured at the "
               f"highest train accuracy all members reached within the first "
               f"{100 * BEFORE_CAP:.0f}% of the steps ({100 * threshold:.1f}%, rounded down to "
               f"0.1%), not at the paper's 100%, so that no count is set by the cap (the "
               f"highest all reached at all: {100 * at_all:.1f}%)")
  if base_steps:
    # interval: one cadence, or (finest, coarsest) crossing windows of members that differ
    finest, coarsest = interval if isinstance(interval, tuple) else (interval, interval)
    every = (f"{finest} steps" if finest == coarsest else
             f"{finest} to {coarsest} steps before a crossing (per member)")
    out.append(f"{name}: evaluated every {every}, so a step count is "
               f"at most {coarsest} late and a ratio carries up to "
               f"±{200 * coarsest / base_steps:.1f}% of rounding")
  return out


def eval_interval(run) -> int:
  """Steps between two evaluation points of a run (from its metrics)."""
  steps = sorted({r["step"] for r in run["metrics"]})
  return min((b - a for a, b in zip(steps, steps[1:], strict=False)), default=steps[0]
             if steps else 0)
