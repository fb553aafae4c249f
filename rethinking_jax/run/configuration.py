"""A run config checked and resolved, before anything is compiled or written; and a saved
config compared with today's (resume, a workdir's record).

Each room checks its own section (`check_config` beside the code that reads it, handed only
that section); a run is checked once (`validate`), a suite once per sub-run before any trains.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

from rethinking_jax import models
from rethinking_jax.base.errors import UserError
from rethinking_jax.data import inputs
from rethinking_jax.engine import checkpoints, loop, program, strategies
from rethinking_jax.engine import members as members_lib
from rethinking_jax.reports import writers
from rethinking_jax.run import base_config


@dataclasses.dataclass(frozen=True)
class Resolved:
  """A validated config with everything derived that the engine needs."""

  learning_rate: float
  members: list[members_lib.MemberSpec]


def validate(config) -> Resolved:
  """Raises UserError (one line: the field and what is allowed) for a bad config; else the
  config's members and learning rate. The rooms in base_config.ROOMS' order."""
  check_finite(config)
  data = inputs.SECTION.of(config)
  streamed = inputs.streams(data)
  inputs.check_config(data)
  models.check_config(models.SECTION.of(config))
  members_lib.check_config(members_lib.SECTION.of(config))
  program.check_config(program.SECTION.of(config))
  loop.check_config(loop.SECTION.of(config), streamed=streamed)
  strategies.check_config(strategies.SECTION.of(config), streamed=streamed)
  checkpoints.check_config(checkpoints.SECTION.of(config))
  writers.check_config(writers.SECTION.of(config))
  return Resolved(members_lib.default_learning_rate(config), members_lib.from_config(config))


def check_finite(config, prefix: str = "") -> None:
  """Every float field (nested sections too) is a finite number: `inf` would pass a room's
  `> 0` check (`nan` does not) and fail only when the first metrics are written."""
  for key, value in config.items():
    if hasattr(value, "items"):
      check_finite(value, f"{prefix}{key}.")
    elif isinstance(value, float) and not math.isfinite(value):
      raise UserError(f"{prefix}{key}: {value} is not a finite number; allowed: a finite "
                      "number")


def comparable(config_dict: dict) -> dict:
  """The fields a resumed run must keep (base_config.resume_may_change: the others)."""
  may_change = base_config.resume_may_change()
  return {k: v for k, v in config_dict.items() if k not in may_change}


_MISSING = object()


def config_differences(saved: dict, current: dict, ignore=()) -> list[str]:
  """The fields in which two config dicts differ, as 'field: saved in the workdir, now'.

  Config evolution: a field the code gained after the run was saved counts as having its
  default, which by the project's rule (sections.Section.of) is the behaviour the code had
  before the field existed. So an old run resumes, and re-reports, after an upgrade.
  """
  saved, current = comparable(saved), comparable(current)
  defaults = json.loads(base_config.get_config().to_json())
  diffs = []
  for k in sorted(set(saved) | set(current)):
    if k in ignore:
      continue
    before = saved.get(k, defaults.get(k, _MISSING))
    now = current.get(k, _MISSING)
    if before != now:
      show = lambda v: "absent" if v is _MISSING else repr(v)
      diffs.append(f"{k}: {show(before)} in the workdir, {show(now)} now")
  return diffs


def check_workdir(workdir: str, config_dict: dict) -> None:
  """Refuses a workdir that holds a run of a different config (one line, what differs)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError):
    return  # an unreadable config.json is rewritten; checkpoints carry their own copy
  diffs = config_differences(saved, config_dict)
  if diffs:
    raise UserError(f"workdir: {workdir} holds a run with a different config ({'; '.join(diffs)});"
                    " use a new --workdir, or --config.restart=True to discard that run")
