"""The training process around a run: exit statuses, the backend's setup (XLA flags,
multi-host, logging, the compilation cache) and the faults of the machine -- a full disk, a
missing platform, a stop -- each reported in one line, not a traceback."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys

from absl import logging

from rethinking_jax.base.errors import UserError
from rethinking_jax.base.stop_signals import Interrupted

# Exit status: 0 the run finished (its summary says what each member did); 2 a user mistake or
# a predictable fault (one line, nothing written); 3 stopped by SIGTERM/SIGINT/SIGHUP with a
# checkpoint (rerun the command to resume); 4 the run finished but every member diverged; 130
# Ctrl-C before training began.
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3
EXIT_ALL_DIVERGED = 4
EXIT_CTRL_C = 130  # the shell's code for a process ended by SIGINT
# Faults of the machine rather than of the code, reported in one line (errno -> what to do).
_DISK_FAULTS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EIO: "input/output error",
                errno.EFBIG: "file size limit exceeded"}


def fail(message: str) -> None:
  """A user mistake or a predictable fault: one line on stderr, exit 2."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(EXIT_USAGE)


def prepare_backend(config) -> None:
  """Before anything touches JAX's backend: XLA's CPU flags (read once), multi-host
  initialisation, the platform check, our log lines without the libraries' chatter, and the
  persistent compilation cache (engine/compile_cache.py)."""
  from rethinking_jax.engine import xla_cpu

  try:
    xla_cpu.apply(config.get("conv_impl", "auto"))
  except UserError as err:
    fail(str(err))
  if config.get("distributed") or os.environ.get("JAX_COORDINATOR_ADDRESS"):
    import jax

    # Arguments from the environment (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
    # JAX_PROCESS_ID) or detected on TPU pods, SLURM and Open MPI.
    jax.distributed.initialize()
  _check_platforms()
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_quiet_libraries)
  _quiet_hooks()
  from rethinking_jax.engine import compile_cache

  compile_cache.enable()


@contextlib.contextmanager
def faults_in_one_line():
  """A UserError, a stop by signal and the disk's faults as one line and their exit status."""
  try:
    yield
  except UserError as err:
    fail(str(err))
  except Interrupted as err:
    print(f"interrupted: {err}", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)
  except OSError as err:
    if err.errno not in _DISK_FAULTS:
      raise
    _fail_now(f"disk: {_DISK_FAULTS[err.errno]}{_file_size_limit(err.errno)} writing "
              f"{err.filename or 'the outputs'}; the run stopped there, its last complete "
              "checkpoint (if any) intact: free space (or fix permissions or the limit) and "
              "rerun to resume")
  except Exception as err:
    # orbax and tensorstore report a full disk inside their own exception types.
    if "No space left on device" not in str(err):
      raise
    _fail_now("disk: no space left on the device while saving; the run's last complete "
              "checkpoint is intact: free space and rerun to resume")


def ctrl_c_before_training() -> None:
  """Ctrl-C before training began (SIGINT's handler is installed only then:
  stop_signals.StopSignals): one line and exit 130, not a traceback from wherever it landed."""
  print("interrupted: Ctrl-C before training began; the workdir holds no new checkpoint "
        "(its previous ones, if any, are intact): rerun the same command to start",
        file=sys.stderr, flush=True)
  sys.exit(EXIT_CTRL_C)


def _check_platforms() -> None:
  """JAX_PLATFORMS naming a platform this machine lacks: one line, not jax's traceback
  (which names 'rocm' when 'gpu' finds no CUDA)."""
  asked = os.environ.get("JAX_PLATFORMS")
  if not asked:
    return
  import jax

  try:
    jax.devices()
  except RuntimeError as err:
    known = re.search(r"known backends: \[([^\]]*)\]", str(err))
    here = f" (this jax has: {known.group(1)})" if known else ""
    fail(f"JAX_PLATFORMS: {asked!r} is not available on this machine{here}; allowed: cpu, "
          "or unset JAX_PLATFORMS (jax picks the best platform it finds; a GPU needs "
          "jax[cuda12])")


def _quiet_libraries(record) -> bool:
  """Keeps our INFO lines; drops the INFO chatter of orbax and other libraries, and tfds's
  warnings about files of a dataset that is not there (our one-line error follows)."""
  if "rethinking_jax" in record.pathname:
    return True
  if "tensorflow_datasets" in record.pathname and "dataset_info.json" in record.getMessage():
    return False
  if record.exc_info and not os.environ.get("RETHINKING_JAX_TRACEBACKS"):
    # A library's background thread that failed (orbax saving onto a full disk logs a
    # traceback per thread) gets its first line; our own one-line error follows. Set
    # RETHINKING_JAX_TRACEBACKS=1 to see them whole.
    record.msg, record.args = record.getMessage().splitlines()[0][:300], ()
    record.exc_info = record.exc_text = None
  return record.levelno >= 30


def _closed_loop(value) -> bool:
  """The echo of a failed background save: tensorstore's callbacks find orbax's event loop
  closed and report that, once per array, as an 'unraisable' exception."""
  return isinstance(value, RuntimeError) and str(value) == "Event loop is closed"


def _quiet_hooks() -> None:
  excepthook, unraisablehook = sys.excepthook, sys.unraisablehook
  sys.excepthook = lambda kind, value, tb: (None if _closed_loop(value)
                                            else excepthook(kind, value, tb))
  sys.unraisablehook = lambda unraisable: (None if _closed_loop(unraisable.exc_value)
                                           else unraisablehook(unraisable))


def _file_size_limit(code: int) -> str:
  """For EFBIG: the process's file-size limit (`ulimit -f`), which is what was exceeded."""
  import resource

  limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
  if code != errno.EFBIG or limit == resource.RLIM_INFINITY:
    return ""
  return f" (this process may write files of at most {limit:,} bytes: ulimit -f)"


def _fail_now(message: str) -> None:
  """_fail without the interpreter's shutdown, where the threads of a failed background save
  would print their tracebacks after our line."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(EXIT_USAGE)
