"""JSON outputs, written atomically (a reader never sees half a file)."""

from __future__ import annotations

import json
import os

from absl import logging


def write_json(path: str, obj) -> None:
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=False, allow_nan=False)
    f.write("\n")
  os.replace(tmp, path)


class MetricsWriter:
  """Appends one JSON object per line to metrics.jsonl, flushed at every evaluation point.

  `keep_lines`: how many lines of an existing file to keep (a resumed run keeps the lines its
  checkpoint had seen and drops any written after it, so no line is duplicated or missing).
  """

  def __init__(self, path: str, keep_lines: int = 0, enabled: bool = True):
    self.enabled = enabled  # False on all processes but the first of a multi-host run
    if not enabled:
      self.kept, self.lines, self._file = [], keep_lines, None
      return
    self.kept = read_jsonl(path)[:keep_lines] if keep_lines and os.path.exists(path) else []
    if len(self.kept) < keep_lines:
      logging.warning("%s has %d lines, its checkpoint saw %d; earlier evaluation points are "
                      "missing from it", path, len(self.kept), keep_lines)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
      f.writelines(json.dumps(r, allow_nan=False) + "\n" for r in self.kept)
    os.replace(tmp, path)
    self._file = open(path, "a")
    self.lines = len(self.kept)

  def write(self, records) -> None:
    self.lines += len(records)
    if not self.enabled:
      return
    for record in records:
      self._file.write(json.dumps(record, allow_nan=False) + "\n")
    self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()


def read_jsonl(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
