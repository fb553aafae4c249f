"""The paper's results, one module per table or figure (each a `Study`: its runs, seed range,
panels, paper numbers, protocol and report section). Adding one: a module with a STUDY, and
one line in STUDIES below (or `register` at run time); `configs/study.py:NAME` runs it."""

from __future__ import annotations

from rethinking_jax.reports import suite_report
from rethinking_jax.studies import figure1, figure2, rademacher, table1, table2, table4
from rethinking_jax.studies.study import SEEDS_PER_STUDY, Study

STUDIES: dict[str, Study] = {}


def register(study: Study) -> None:
  """Adds `study`; refuses a name or a seed range that another study has."""
  if study.name in STUDIES:
    raise ValueError(f"study {study.name!r} exists already")
  for other in STUDIES.values():
    if other.seed_offset == study.seed_offset:
      raise ValueError(f"study {study.name}: seed_offset {study.seed_offset} is "
                       f"{other.name}'s; taken: "
                       f"{', '.join(f'{s.name} {s.seed_offset}' for s in STUDIES.values())} "
                       f"(each owns {SEEDS_PER_STUDY} seeds)")
  STUDIES[study.name] = study


for _module in (table1, table2, table4, figure1, figure2, rademacher):
  register(_module.STUDY)


def get(name: str | None) -> Study | None:
  """The study a suite config's `report` names (None: an ad-hoc suite of runs)."""
  return STUDIES.get(name) if name else None


def write_report(workdir: str, sources=()) -> str:
  """Writes the combined report of a suite workdir (its study's layout), with the runs of
  the suite workdirs `sources` beside its own; returns its path."""
  return suite_report.render(workdir, get, sources)
