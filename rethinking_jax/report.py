"""Re-renders the report of a workdir: python -m rethinking_jax.report --workdir=DIR.

With --sources=DIR,DIR,...: a suite workdir's report with the runs of those suite workdirs
beside its own (e.g. Table 1's rows with members another suite trained under the same
protocol); into a --workdir that holds no run: Figure 1 as one figure from their runs.

A suite workdir (configs/table1.py, figure1.py, ...) gets its combined report in the paper's
layout; a single run's workdir gets report.md and curves.png again.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

from rethinking_jax import studies
from rethinking_jax.reports import files, markdown

_WORKDIR = flags.DEFINE_string("workdir", None, "A run's or a suite's workdir.")
_SOURCES = flags.DEFINE_list(
    "sources", [], "Suite workdirs whose runs join --workdir's (a suite's) report; or, into "
    "a --workdir without a config.json: Figure 1 as one figure from all of their runs "
    "(figure1.png, .pdf, .csv, report.md).")


def render(workdir: str, sources=()) -> str:
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise FileNotFoundError(f"workdir: no config.json in {workdir}; is it a run's workdir?")
  with open(config_path) as f:
    config = json.load(f)
  if config.get("runs"):
    return studies.write_report(workdir, sources)
  if sources:
    raise ValueError(f"sources: {workdir} holds a single run; runs of other workdirs join "
                     "a suite's report (a workdir of configs/table1.py, figure1.py, ...)")
  experiment = config.get("experiment", "train")
  if experiment != "train":  # fooling images, the theory: their command writes their report
    raise ValueError(f"workdir: {workdir} holds a {experiment} experiment, whose report its "
                     "own run writes (rerun its config); allowed: a training run's or a "
                     "suite's workdir")
  metrics = os.path.join(workdir, "metrics.jsonl")
  history = files.read_jsonl(metrics) if os.path.exists(metrics) else []
  summary_path = os.path.join(workdir, "summary.json")
  if not os.path.exists(summary_path):  # interrupted or still training: what exists
    path = os.path.join(workdir, "report.md")
    files.write_text(path, markdown.unfinished_report(config, history))
    return path
  with open(summary_path) as f:
    summary = json.load(f)
  return markdown.write_run_report(workdir, config, summary, history)


def main(argv):
  if not _WORKDIR.value:
    print("error: --workdir is required", file=sys.stderr)
    sys.exit(2)
  print(f"report: rendering {_WORKDIR.value} (reading its metrics, drawing its figures)",
        file=sys.stderr, flush=True)
  try:
    if _SOURCES.value and not os.path.exists(os.path.join(_WORKDIR.value, "config.json")):
      print(f"report: {studies.figure1.combined(_WORKDIR.value, _SOURCES.value)}")
    else:
      print(f"report: {render(_WORKDIR.value, _SOURCES.value)}")
  except (OSError, ValueError) as err:  # a missing or damaged file: one line
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)


def run() -> None:
  """`rethinking-jax report` (rethinking_jax/cli.py) and `python -m rethinking_jax.report`."""
  app.run(main)


if __name__ == "__main__":
  run()
