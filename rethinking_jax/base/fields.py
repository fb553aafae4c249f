"""Comma-separated config fields (`seeds=0,1,2`, `weight_decays=0,5e-4`) read as typed lists,
with the one-line error of a user mistake: one reading for the validation and the engine."""

from __future__ import annotations

import math

from rethinking_jax.base.errors import UserError


def split(text) -> list[str]:
  """'a, b,,c' -> ['a', 'b', 'c']; a tuple or list is taken item by item."""
  if isinstance(text, (tuple, list)):
    return [str(t) for t in text]
  return [t for t in (s.strip() for s in str(text).split(",")) if t]


def numbers(field: str, text, kind=float, minimum=None, strict=True) -> list:
  """The items of `text` as `kind`, each above `minimum` (or at least it, strict=False)."""
  values = []
  for item in split(text):
    try:
      value = kind(item)
    except ValueError:
      raise UserError(f"{field}: {item!r} is not a{'n integer' if kind is int else ' number'} "
                      f"(expected comma-separated values, e.g. {field}=1,2)") from None
    if not math.isfinite(value):
      raise UserError(f"{field}: {item!r} is not a finite number (expected comma-separated "
                      f"values, e.g. {field}=1,2)")
    if minimum is not None and (value <= minimum if strict else value < minimum):
      raise UserError(f"{field}: {value} must be {'>' if strict else '>='} {minimum}")
    values.append(value)
  return values
