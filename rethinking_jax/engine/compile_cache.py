"""JAX's persistent compilation cache for runs: a program is compiled once per machine.

A suite's sub-runs that share shapes compile the same init and evaluation programs, and a
rerun (a resumed run, the next seed, the same smoke suite) compiles the same programs again;
XLA:CPU spends seconds on each small-Inception program. JAX keys a cached executable by its
HLO, the compiler flags, the backend and jaxlib's version, so a hit is the program that
would have been compiled.

Where: `RETHINKING_JAX_COMPILE_CACHE` (a directory, or `off`), else JAX's own
`JAX_COMPILATION_CACHE_DIR` where set, else ~/.cache/rethinking_jax/xla (capped at
MAX_BYTES; JAX evicts the least recently used entries, which needs the filelock package: a
declared dependency, and without it the cache is unbounded rather than off).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from absl import logging

ENV = "RETHINKING_JAX_COMPILE_CACHE"
MAX_BYTES = 2 << 30
MIN_COMPILE_SECONDS = 0.0  # every program: the small ones add up (a smoke suite compiles ~100)


def directory() -> Path | None:
  """Where this process caches compiled programs (None: off)."""
  chosen = os.environ.get(ENV) or os.environ.get("JAX_COMPILATION_CACHE_DIR")
  if chosen == "off":
    return None
  if chosen:
    return Path(chosen).expanduser()
  base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
  return Path(base) / "rethinking_jax" / "xla"


def enable() -> Path | None:
  """Turns the cache on for this process (before its first compilation); a directory that
  cannot be made is said in one line and the run compiles as usual."""
  path = directory()
  if path is None:
    return None
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as err:
    logging.warning("compilation cache off: cannot make %s (%s); set %s to another "
                    "directory or to off", path, err.strerror or err, ENV)
    return None
  import jax

  # A program the cache cannot store (a full disk, a file-size limit) or read back (an entry
  # such a fault truncated) is only compiled again: JAX warns once per program with a path;
  # the run's own error, if any, follows.
  warnings.filterwarnings("ignore", message="Error (reading|writing) persistent compilation "
                          "cache")
  jax.config.update("jax_compilation_cache_dir", str(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
  try:
    import filelock  # noqa: F401  (JAX's size bound locks the directory with it)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
  except ImportError:
    logging.warning("compilation cache at %s is unbounded: install filelock to cap it at "
                    "%d GiB", path, MAX_BYTES >> 30)
  return path
