"""A run's working directory: checked before any work starts, held by one process at a time.

Two processes training into one workdir would delete each other's checkpoints and interleave
their metrics; an advisory lock (WORKDIR/.rethinking_jax.lock, fcntl) stops the second one
with a line naming the first one's PID. The lock dies with its process, so a killed run
never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator

from rethinking_jax.base.errors import UserError

LOCK_FILE = ".rethinking_jax.lock"


def check_writable(workdir: str, dirs: tuple[str, ...] = ()) -> None:
  """One line, before any work, when `workdir` cannot hold a run's outputs; `dirs`: entries
  the run keeps as folders (its checkpoints), which must not be files."""
  path = os.path.abspath(workdir)
  _check_name_lengths(workdir, path)
  if os.path.islink(path) and not os.path.exists(path):
    raise UserError(f"workdir: {workdir} is a symbolic link to {os.readlink(path)}, which "
                    "does not exist; allowed: a directory (new or a previous run's)")
  if os.path.exists(path):
    if not os.path.isdir(path):
      raise UserError(f"workdir: {workdir} is a file, not a directory; allowed: a directory "
                      "(new or a previous run's)")
    if not os.access(path, os.W_OK | os.X_OK):
      raise UserError(f"workdir: {workdir} is not writable by this user")
    for name in dirs:
      entry = os.path.join(path, name)
      if os.path.lexists(entry) and not os.path.isdir(entry):
        raise UserError(f"workdir: {os.path.join(workdir, name)} is a file, not the "
                        "directory a run keeps there; move it away or use another --workdir")
    return
  parent = os.path.dirname(path)
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UserError(f"workdir: {workdir} is under {parent}, which is a file, not a directory")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise UserError(f"workdir: {workdir} cannot be created: {parent} is not writable by this "
                    "user")


def _check_name_lengths(workdir: str, path: str) -> None:
  """A folder name or path longer than the file system allows fails in os.makedirs with a
  traceback; say which limit, before any work."""
  existing = path
  while not os.path.isdir(existing):
    existing = os.path.dirname(existing)
  try:
    name_max = os.pathconf(existing, "PC_NAME_MAX")
    path_max = os.pathconf(existing, "PC_PATH_MAX")
  except (OSError, ValueError):
    name_max, path_max = 255, 4096
  for name in path.split(os.sep):
    if len(os.fsencode(name)) > name_max:
      raise UserError(f"workdir: the folder name {name[:40]}... is {len(os.fsencode(name))} "
                      f"bytes; allowed: names of at most {name_max} bytes on this file system")
  if len(os.fsencode(path)) >= path_max:
    raise UserError(f"workdir: its path is {len(os.fsencode(path))} bytes; allowed: paths "
                    f"shorter than {path_max} bytes on this file system")


@contextlib.contextmanager
def hold(workdir: str) -> Iterator[None]:
  """Creates `workdir` and holds its lock for the block; a second holder gets one line."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      if err.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
      raise UserError(f"workdir: {workdir} is in use by process {holder} (a run is training "
                      "there); wait for it to finish, stop it, or use another --workdir"
                      ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    yield
  finally:
    os.close(fd)  # releases the lock
