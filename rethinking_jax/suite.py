"""Suites: a config with named sub-runs (the paper's tables and figures), one workdir each.

Every sub-run is validated before the first one trains; each then trains (and resumes)
exactly like a single run in WORKDIR/NAME, and the combined report is written at the end.
"""

from __future__ import annotations

import json
import os

import ml_collections

from rethinking_jax import configuration, train
from rethinking_jax.errors import UserError
from rethinking_jax.reports import files, suite_report


def is_suite(config) -> bool:
  return bool(config.get("runs"))


def sub_configs(config) -> dict[str, ml_collections.ConfigDict]:
  """{name: the base config with that run's overrides}, each validated."""
  subs = {}
  for name, overrides in config.runs.items():
    sub = ml_collections.ConfigDict(config.to_dict())
    sub.runs = ml_collections.ConfigDict()
    for key, value in overrides.items():
      if key not in sub:
        raise UserError(f"runs.{name}.{key}: unknown field; allowed: "
                        f"{', '.join(sorted(k for k in sub if k != 'runs'))}")
      sub[key] = value
    try:
      configuration.validate(sub)
    except UserError as err:
      raise UserError(f"runs.{name}: {err}") from None
    subs[name] = sub
  return subs


def run_suite(config, workdir: str) -> dict:
  """Trains every sub-run into WORKDIR/NAME, then writes the combined report."""
  subs = sub_configs(config)  # all validated before anything trains or is written
  os.makedirs(workdir, exist_ok=True)
  files.write_json(os.path.join(workdir, "config.json"), json.loads(config.to_json()))
  summaries = {}
  for name, sub in subs.items():
    summaries[name] = train.train_and_evaluate(sub, os.path.join(workdir, name))
  suite_report.write(workdir)
  return {"runs": summaries, "report": os.path.join(workdir, "report.md")}
