"""Files written atomically: a reader never sees half a file, and two writers never share a
temporary name (each writes its own, then renames it over the target)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator


def _file_mode() -> int:
  umask = os.umask(0o022)  # read once, at import: os.umask can only be read by setting it
  os.umask(umask)
  return 0o666 & ~umask


_MODE = _file_mode()  # what open() would give: mkstemp's own files are private (0600)

class WriteFailed(OSError):
  """Writing `filename` failed (a full disk, a file-size limit); the file there before, if
  any, is as it was: the temporary file is removed, never renamed over it."""

  def __str__(self) -> str:
    return (f"{self.strerror} writing {self.filename}; the file there before (if any) is "
            "intact")


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
  """A fresh temporary path beside `path`; renamed over `path` if the block succeeds, removed
  if it fails (a full disk, an interrupt)."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=f".tmp{suffix}",
                             dir=directory)
  os.fchmod(fd, _MODE)
  os.close(fd)
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException as err:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    if isinstance(err, OSError) and err.errno and not isinstance(err, WriteFailed):
      raise WriteFailed(err.errno, err.strerror or os.strerror(err.errno), path) from err
    raise


def write_text(path: str, text: str) -> None:
  with atomic_path(path) as tmp, open(tmp, "w") as f:
    f.write(text)


def write_json(path: str, obj) -> None:
  write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")
