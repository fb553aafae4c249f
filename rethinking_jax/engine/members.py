"""Members: the seeds x randomizations x learning rates x weight decays trained together."""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import jax
import numpy as np
from jax.typing import ArrayLike

from rethinking_jax import models
from rethinking_jax.base import fields, sections
from rethinking_jax.base.errors import require
from rethinking_jax.data import randomize


@dataclasses.dataclass(frozen=True)
class MemberSpec:
  """One independently trained model of a run."""

  randomization: randomize.Randomization
  seed: int
  learning_rate: float
  weight_decay: float
  label: str


class MemberArrays(NamedTuple):
  """What the compiled program needs of each member, stacked on a leading member axis."""

  def key(self) -> jax.Array:
    """The member's PRNG key (inside the single-member program)."""
    return jax.random.key(self.seed)

  # numpy on the host (stack), jax arrays once placed on the mesh
  seed: ArrayLike           # uint32; the member's PRNG key is jax.random.key(seed)
  kind: ArrayLike           # int32 randomization code (randomize.KIND_CODE)
  label_p: ArrayLike        # float32 label-corruption probability
  learning_rate: ArrayLike  # float32 initial learning rate
  weight_decay: ArrayLike   # float32 L2 coefficient on kernels


def member_specs(randomizations, seeds, learning_rates, weight_decays) -> list[MemberSpec]:
  """The product randomization x seed x learning rate x weight decay, labelled readably.

  A label names only the factors that vary across the run.
  """
  grid = list(itertools.product(randomizations, seeds, learning_rates, weight_decays))
  varies = [len(set(values)) > 1 for values in (randomizations, seeds, learning_rates,
                                                weight_decays)]
  specs = []
  for r, seed, lr, wd in grid:
    parts = [r.label] if varies[0] or not any(varies[1:]) else []
    parts += [f"seed={seed}"] if varies[1] else []
    parts += [f"lr={lr:g}"] if varies[2] else []
    parts += [f"wd={wd:g}"] if varies[3] else []
    specs.append(MemberSpec(r, seed, float(lr), float(wd), "/".join(parts)))
  return specs


# The members: the product randomizations x seeds x learning_rates x weight_decays.
SECTION = sections.Section("members", {
    "randomizations": "true_labels",  # comma-separated: true_labels, corrupt_labels:P, ...
    "seeds": "0",                     # comma-separated ints
    "learning_rates": "",             # comma-separated; empty = learning_rate
    "weight_decays": "",              # comma-separated; empty = weight_decay
    # None = the paper's: 0.1 Inception, else 0.01 (the model's record)
    "learning_rate": sections.Unset(float),
    "weight_decay": 0.0,  # L2 on kernels (Table 1 "yes": 5e-4 conv nets, 1e-4 MLPs)
})


def check_config(c) -> None:
  """The member fields: the grid randomizations x seeds x learning rates x weight decays."""
  require(c.learning_rate is None or c.learning_rate > 0,
          f"learning_rate: {c.learning_rate} must be > 0 (or unset for the paper's value)")
  require(c.weight_decay >= 0, f"weight_decay: {c.weight_decay} must be >= 0")
  for spec in fields.split(c.randomizations):
    randomize.parse(spec)
  require(bool(fields.split(c.randomizations)), "randomizations: empty; allowed: a "
          f"comma-separated list of {', '.join(randomize.KINDS)} (corrupt_labels:P)")
  require(bool(fields.split(c.seeds)), "seeds: empty; give comma-separated ints, e.g. "
          "seeds=0,1,2")
  fields.numbers("seeds", c.seeds, int, minimum=0, strict=False)
  fields.numbers("learning_rates", c.learning_rates, float, minimum=0.0)
  fields.numbers("weight_decays", c.weight_decays, float, minimum=0.0, strict=False)


def default_learning_rate(config) -> float:
  """The config's learning rate, or else its model's own (models.record)."""
  return (SECTION.of(config).learning_rate
          or models.record(models.SECTION.of(config).model).learning_rate)


def from_config(config) -> list[MemberSpec]:
  """The members a run's config asks for (its members section; its model for the default
  learning rate). Reads fields configuration.validate has checked: a run validates first; a
  report reads the config a validated run saved."""
  c = SECTION.of(config)
  return member_specs(
      [randomize.parse(s) for s in fields.split(c.randomizations)],
      fields.numbers("seeds", c.seeds, int),
      fields.numbers("learning_rates", c.learning_rates) or [default_learning_rate(config)],
      fields.numbers("weight_decays", c.weight_decays) or [c.weight_decay])


def describe(index: int, spec: MemberSpec) -> dict:
  """A member's settings as the first fields of its row in summary.json and the measures."""
  return {"member": index, "label": spec.label, "randomization": spec.randomization.kind,
          "corruption_p": spec.randomization.label_p, "seed": spec.seed,
          "learning_rate": spec.learning_rate, "weight_decay": spec.weight_decay}


def stack(specs: list[MemberSpec]) -> MemberArrays:
  """Host (numpy) arrays; the engine places them on the mesh, sharded over members."""
  return MemberArrays(
      seed=np.asarray([s.seed for s in specs], np.uint32),
      kind=np.asarray([randomize.KIND_CODE[s.randomization.kind] for s in specs], np.int32),
      label_p=np.asarray([s.randomization.label_p for s in specs], np.float32),
      learning_rate=np.asarray([s.learning_rate for s in specs], np.float32),
      weight_decay=np.asarray([s.weight_decay for s in specs], np.float32))


def input_kinds_present(specs: list[MemberSpec]) -> tuple[str, ...]:
  return tuple(k for k in randomize.input_kinds() if any(s.randomization.kind == k for s in specs))
