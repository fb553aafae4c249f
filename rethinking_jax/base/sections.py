"""Config sections: each room declares the fields it reads, once, beside the code that reads
them, and is handed only those.

A run's config stays one flat ConfigDict at its borders (--config.FIELD flags, config.json,
checkpoints, the suites' overrides), so every committed workdir reads, resumes and re-renders
as before; base_config puts the rooms' sections together. A new field is one line in its
room's section plus its use there.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import ml_collections
from ml_collections import config_dict


@dataclasses.dataclass(frozen=True)
class Unset:
  """The default of a field that is unset (None) unless given, and then of type `kind`
  (a fresh ml_collections placeholder in every config, so configs never share it)."""

  kind: type


@dataclasses.dataclass(frozen=True)
class Section:
  """A room's config fields and their defaults; `resume_may_change`: those a resumed run may
  change (how long it goes and how it reports, how it is laid out, compiled or read: the same
  numbers). Every other field of a resumed run must equal its checkpoint's."""

  name: str
  fields: Mapping[str, Any]
  resume_may_change: frozenset[str] = frozenset()

  def __post_init__(self):
    unknown = sorted(self.resume_may_change - set(self.fields))
    if unknown:
      raise ValueError(f"section {self.name}: resume_may_change names no field of it: "
                       f"{', '.join(unknown)}")

  def defaults(self) -> dict[str, Any]:
    return {name: None if isinstance(d, Unset) else d for name, d in self.fields.items()}

  def add_to(self, config: ml_collections.ConfigDict) -> None:
    """Adds the fields to `config` with their defaults (base_config.get_config), each a
    copy: no two configs share a mutable default."""
    for name, default in self.fields.items():
      config[name] = (config_dict.placeholder(default.kind) if isinstance(default, Unset)
                      else copy.deepcopy(default))

  def of(self, config) -> ml_collections.FrozenConfigDict:
    """This room's fields of a run config (a ConfigDict, or the dict a workdir saved), read
    only. A field absent from a record written before it existed takes its default: the
    behaviour the code had before the field existed."""
    defaults = self.defaults()
    return ml_collections.FrozenConfigDict(
        {name: config.get(name, defaults[name]) for name in self.fields})
