"""Sub-runs put back together: a report's panel (a run's declared `panel` field) and the
runs of one model in it, merged into one run (its input kinds or corruption levels trained
as separate sub-runs, each until its own member memorized)."""

from __future__ import annotations

from collections import defaultdict


def panel_of(name: str, run, panels=()) -> str:
  """A run's declared panel; a workdir written before the field existed: its name's prefix
  among `panels` (the configs' names then: a_inception_small, bc_MODEL)."""
  declared = run["config"].get("panel")
  if declared is not None:
    return declared
  return next((p for p in panels if name.startswith(f"{p}_")), "")


def panel_runs(runs, panel: str, panels=()) -> list[dict]:
  return [run for name, run in runs.items() if panel_of(name, run, panels) == panel]


def run_of_model(runs, model: str):
  """The first of `runs` (run dicts) that trains `model`: from what it recorded, not from its
  name."""
  return next((run for run in runs if run["summary"]["run"]["model"] == model), None)


def merged(runs: list[dict]) -> dict:
  """Runs of one model and panel as one run: their members one after another."""
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


def panel_by_model(runs, panel: str, panels=()) -> dict[str, dict]:
  """{model: its runs of `panel`, merged}, in the order the runs come."""
  grouped = defaultdict(list)
  for run in panel_runs(runs, panel, panels):
    grouped[run["summary"]["run"]["model"]].append(run)
  return {model: merged(group) for model, group in grouped.items()}
