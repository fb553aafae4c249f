"""Seeds as members: a report cell is the mean over a row's seeds, with its spread.

Each row of a paper table can be trained by N members that differ only in their seed
(independent initialisation, data order and label draws). A cell then reads
"mean ± standard deviation (N)"; with one seed, just the value.
"""

from __future__ import annotations

import math


def summarize(values) -> tuple[float | None, float | None, int]:
  """(mean, sample standard deviation, n) of the values that are not None."""
  xs = [float(v) for v in values if v is not None]
  if not xs:
    return None, None, 0
  mean = sum(xs) / len(xs)
  sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
  return mean, sd, len(xs)


def cell(values, scale: float = 100.0, digits: int = 2) -> str:
  """'51.23' for one value, '51.23 ± 0.40 (3)' for three, '—' for none (scaled, e.g. %)."""
  mean, sd, n = summarize(values)
  if n == 0:
    return "—"
  if n == 1:
    return f"{scale * mean:.{digits}f}"
  return f"{scale * mean:.{digits}f} ± {scale * sd:.{digits}f} ({n})"


def diff(values, theirs, scale: float = 100.0) -> str:
  """Our mean minus the paper's value, signed ('—' when either is missing)."""
  mean, _, n = summarize(values)
  if n == 0 or theirs is None:
    return "—"
  return f"{round(scale * mean - theirs, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"


def csv_fields(prefix: str, values, scale: float = 100.0) -> dict:
  """{prefix: mean, prefix_sd: sd, prefix_n: n}, rounded to 2 decimals (scaled)."""
  mean, sd, n = summarize(values)
  return {prefix: None if mean is None else round(scale * mean, 2),
          f"{prefix}_sd": None if sd is None else round(scale * sd, 2), f"{prefix}_n": n}
