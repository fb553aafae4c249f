"""A run config checked and resolved, before anything is compiled or written.

Each room checks its own fields (`check_config` beside the code that reads them); a run is
checked once (`validate`), a suite once per sub-run before any trains.
"""

from __future__ import annotations

import dataclasses
import math

from rethinking_jax import models
from rethinking_jax.data import inputs
from rethinking_jax.engine import checkpoints, loop, program, strategies
from rethinking_jax.engine import members as members_lib
from rethinking_jax.errors import UserError
from rethinking_jax.reports import writers

# The rooms that own config fields, in the order their errors are reported.
ROOMS = (inputs, models, members_lib, program, loop, strategies, checkpoints, writers)


@dataclasses.dataclass(frozen=True)
class Resolved:
  """A validated config with everything derived that the engine needs."""

  learning_rate: float
  members: list[members_lib.MemberSpec]


def validate(config) -> Resolved:
  """Raises UserError (one line: the field and what is allowed) for a bad config; else the
  config's members and learning rate."""
  check_finite(config)
  for room in ROOMS:
    room.check_config(config)
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
