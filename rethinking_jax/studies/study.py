"""What a paper result is made of: its runs, its seed range, its panels, its paper numbers and
protocol, and its report section -- all in its own module (rethinking_jax/studies/NAME.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from rethinking_jax.reports import protocol

SEEDS_PER_STUDY = 100  # a study's members draw their seeds from [seed_offset, + this)


@dataclasses.dataclass(frozen=True)
class Study:
  """One table or figure of the paper, as the configs, the suite and the report use it."""

  name: str         # the suite config's `report` (configs/NAME.py, or configs/study.py:NAME)
  title: str        # the report's title: "Table 1"
  seed_offset: int  # its members' first seed: no two studies share a member (no default)
  runs: Callable[[], dict]                   # {run name: config overrides}
  section: Callable[[str, dict], list[str]]  # (workdir, runs) -> Markdown; writes CSV / PNG
  config: dict = dataclasses.field(default_factory=dict)  # the suite's own settings
  smoke: dict = dataclasses.field(default_factory=dict)   # its overrides of the smoke stand-in
  panels: tuple[str, ...] = ()   # the panels its sub-runs fill (a run's `panel` field)
  dataset: str = "cifar10"       # the paper's dataset
  memorizes: bool = True         # the paper trains every member to 100% train accuracy
  protocol: Callable[[dict], dict] = protocol.cifar10  # run config -> {field: paper value}

  def __post_init__(self):
    if not isinstance(self.seed_offset, int) or self.seed_offset < 0 or \
        self.seed_offset % SEEDS_PER_STUDY:
      raise ValueError(f"study {self.name}: seed_offset {self.seed_offset!r} must be a "
                       f"multiple of {SEEDS_PER_STUDY} (its own range of seeds)")
