"""JSON outputs, written atomically (a reader never sees half a file)."""

from __future__ import annotations

import json
import os


def write_json(path: str, obj) -> None:
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=False, allow_nan=False)
    f.write("\n")
  os.replace(tmp, path)


class MetricsWriter:
  """Appends one JSON object per line to metrics.jsonl, flushed at every evaluation point."""

  def __init__(self, path: str):
    self._file = open(path, "w")

  def write(self, records) -> None:
    for record in records:
      self._file.write(json.dumps(record, allow_nan=False) + "\n")
    self._file.flush()

  def close(self) -> None:
    self._file.close()


def read_jsonl(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
