"""Suites: a config with named sub-runs (the paper's tables and figures), one workdir each.

Every sub-run is checked in full (config, data, mesh, its workdir) before the first one
trains and before anything is written; each then trains (and resumes) exactly like a single
run in WORKDIR/NAME, and the combined report is written at the end. A suite workdir
accumulates: a later command with another subset of the same suite adds its runs to
WORKDIR/config.json, and the report covers all of them.
"""

from __future__ import annotations

import contextlib
import json
import os

import jax
import ml_collections
from absl import logging

from rethinking_jax import studies
from rethinking_jax.base import workdir as workdir_lib
from rethinking_jax.base.errors import UserError
from rethinking_jax.engine import assemble, checkpoints
from rethinking_jax.reports import files
from rethinking_jax.run import configuration, train


def is_suite(config) -> bool:
  return bool(config.get("runs"))


def sub_configs(config) -> dict[str, ml_collections.ConfigDict]:
  """{name: the base config with that run's overrides}, each validated."""
  return {name: sub for name, (sub, _) in _checked(config).items()}


def _checked(config) -> dict[str, tuple[ml_collections.ConfigDict, configuration.Resolved]]:
  """{name: (its config, configuration.validate's result)}: each sub-run checked once."""
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
      resolved = configuration.validate(sub)
    except UserError as err:
      raise UserError(f"runs.{name}: {err}") from None
    study = studies.get(config.get("report"))
    panels = study.panels if study else ()
    if sub.panel and sub.panel not in panels:
      raise UserError(f"runs.{name}.panel: {sub.panel!r} is not a panel of the "
                      f"{config.get('report') or 'unnamed'} report; allowed: "
                      f"{', '.join(panels) or 'none (leave it empty)'}")
    subs[name] = (sub, resolved)
  return subs


def merged_config(workdir: str, config_dict: dict) -> dict:
  """The suite config to record in WORKDIR/config.json: the runs already there plus this
  command's. Refuses (one line) a workdir that holds another suite or a single run."""
  path = os.path.join(workdir, "config.json")
  if config_dict.get("restart") or not os.path.exists(path):
    return config_dict
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError) as err:
    logging.warning("%s is unreadable (%s); writing it anew", path, err)
    return config_dict
  if not saved.get("runs"):
    raise UserError(f"workdir: {workdir} holds a single run, not a suite; use another "
                    "--workdir")
  diffs = configuration.config_differences(saved, config_dict, ignore=("runs",))
  if diffs:
    raise UserError(f"workdir: {workdir} holds a suite with a different config "
                    f"({'; '.join(diffs)}); use a new --workdir, or --config.restart=True to "
                    "start its record anew")
  runs = dict(saved["runs"])
  for name, overrides in config_dict["runs"].items():
    if name in runs and runs[name] != overrides:
      raise UserError(f"workdir: run {name} in {workdir} has other overrides ({runs[name]}) "
                      f"than now ({overrides}); use a new --workdir or --config.restart=True")
    runs[name] = overrides
  return {**config_dict, "runs": runs}


def run_suite(config, workdir: str) -> dict:
  """Trains every sub-run into WORKDIR/NAME, then writes the combined report."""
  subs = _checked(config)
  workdir_lib.check_writable(workdir)
  merged_config(workdir, json.loads(config.to_json()))  # refuses another suite's workdir
  for name, (sub, resolved) in subs.items():  # all a sub-run would refuse, before any trains
    try:
      workdir_lib.check_writable(os.path.join(workdir, name), dirs=(checkpoints.CHECKPOINT_DIR,))
      assemble.check(sub, resolved)
      if not sub.restart:
        configuration.check_workdir(os.path.join(workdir, name), json.loads(sub.to_json()))
    except UserError as err:
      raise UserError(f"runs.{name}: {err}") from None
  writes = jax.process_index() == 0
  with workdir_lib.hold(workdir) if writes else contextlib.nullcontext():
    record = merged_config(workdir, json.loads(config.to_json()))
    if writes:
      files.write_json(os.path.join(workdir, "config.json"), record)
    summaries = {}
    for i, (name, (sub, resolved)) in enumerate(subs.items(), 1):
      logging.info("suite %s: run %d of %d, %s (%s)", config.get("report") or "", i,
                   len(subs), name, sub.model)
      summaries[name] = train.train_and_evaluate(sub, os.path.join(workdir, name), resolved)
    report = studies.write_report(workdir) if writes else os.path.join(workdir, "report.md")
  return {"runs": summaries, "report": report}

