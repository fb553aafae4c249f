"""The base config: every room's section put together, with the paper's values
(docs/PROTOCOL.md §1-4).

Each field is declared once, in the section of the room that reads it, with its default and
whether a resumed run may change it (rethinking_jax/base/sections.py): data/inputs.py (data),
models/defaults.py (model), engine/members.py (members), engine/program.py (program),
engine/loop.py (loop), engine/strategies.py (engine), engine/checkpoints.py (checkpoint),
reports/writers.py (writers), and the run's own fields below. The config itself stays flat
(`--config.FIELD=`, config.json). Fields marked [default] are the project's choice where the
paper is silent.
"""

import ml_collections

from rethinking_jax import models
from rethinking_jax.base import sections
from rethinking_jax.data import inputs
from rethinking_jax.engine import checkpoints, loop, members, program, strategies
from rethinking_jax.reports import writers

# What a run is, and for a suite (configs/table1.py, figure1.py, ...) its named sub-runs: each
# these fields with its own overrides, trained one after another into WORKDIR/NAME, then one
# combined report. Where its suite's report shows a sub-run may change on resume.
RUN = sections.Section("run", {
    # train | fooling (configs/fooling.py) | theorem1 | table3 | min_norm_sgd (theory, §6-7)
    "experiment": "train",
    "runs": ml_collections.ConfigDict(),
    "report": "",                  # the paper layout of the combined report: table1, ...
    # the part of that report a sub-run fills (figure1: a, bc; its study's panels), declared
    # by its config
    "panel": "",
    "smoke": False,                # a tiny offline stand-in, never the paper's experiment
}, resume_may_change=frozenset({"panel"}))

# The rooms that own config fields, in the order their errors are reported
# (configuration.validate).
ROOMS = (inputs, models, members, program, loop, strategies, checkpoints, writers)


def all_sections() -> tuple[sections.Section, ...]:
  """Every section of a run config (read when called: a section of one's own may be added)."""
  return (*(room.SECTION for room in ROOMS), RUN)


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  for section in all_sections():
    section.add_to(c)
  return c


def resume_may_change() -> frozenset[str]:
  """The fields a resumed run may change, as its sections declare; every other field must
  equal the checkpoint's."""
  return frozenset().union(*(s.resume_may_change for s in all_sections()))
