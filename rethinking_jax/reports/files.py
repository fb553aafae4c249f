"""A run's output files: metrics.jsonl, JSON, Markdown and figures, written atomically."""

from __future__ import annotations

import json
import os

from absl import logging

from rethinking_jax.base.atomic_files import atomic_path, write_json, write_text

__all__ = ["MetricsWriter", "atomic_path", "read_jsonl", "save_figure", "write_json",
           "write_text"]


class MetricsWriter:
  """Appends one JSON object per line to metrics.jsonl at every evaluation point, opening the
  file each time: a file replaced under a run (a `git stash` and `pop`, an editor's save, a
  copy put back) gets the later lines, where a handle held open would write them into the
  replaced file, lost (2026-12-07: 6 evaluation points of a 26-minute stretch).

  `keep_lines`: how many lines of an existing file to keep (a resumed run keeps the lines its
  checkpoint had seen and drops any written after it, so no line is duplicated). `lost` is
  how many of those lines the file no longer has (deleted or truncated by hand): the run's
  summary and report say so.
  """

  def __init__(self, path: str, keep_lines: int = 0, enabled: bool = True):
    self.enabled = enabled  # False on all processes but the first of a multi-host run
    self.lost = 0
    self.path = path
    if not enabled:
      self.kept, self.lines = [], keep_lines
      return
    self.kept = read_jsonl(path)[:keep_lines] if keep_lines and os.path.exists(path) else []
    if len(self.kept) < keep_lines:
      self.lost = keep_lines - len(self.kept)
      logging.warning("%s has %d lines, its checkpoint saw %d; earlier evaluation points are "
                      "missing from it", path, len(self.kept), keep_lines)
    write_text(path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in self.kept))
    self.lines = len(self.kept)

  def write(self, records) -> None:
    self.lines += len(records)
    if not self.enabled:
      return
    with open(self.path, "a") as f:
      f.write("".join(json.dumps(record, allow_nan=False) + "\n" for record in records))

  def close(self) -> None:
    """Nothing held open (kept for the writers' interface)."""


def read_jsonl(path: str) -> list[dict]:
  """The records of a JSON-lines file. A last line cut short (a crash or a full disk in
  mid-write) is dropped with a warning; a damaged line before it is an error."""
  with open(path) as f:
    lines = [line for line in f if line.strip()]
  records = []
  for i, line in enumerate(lines):
    try:
      records.append(json.loads(line))
    except ValueError:
      if i < len(lines) - 1:
        raise ValueError(f"{path}: line {i + 1} is not JSON") from None
      logging.warning("%s: its last line is cut short (%d characters); dropped", path,
                      len(line))
  return records


def save_figure(fig, path: str, dpi: int = 110) -> None:
  """A matplotlib figure as PNG or PDF (by `path`'s extension), atomically."""
  ext = os.path.splitext(path)[1]
  with atomic_path(path, suffix=ext) as tmp:
    # No creation date in a PDF: a re-rendered report is the same bytes.
    fig.savefig(tmp, dpi=dpi, **({"metadata": {"CreationDate": None}} if ext == ".pdf" else {}))
