"""Command line: python -m rethinking_jax.main --config=configs/NAME.py[:ARG] --workdir=DIR.

Overrides: --config.FIELD=VALUE. A user mistake (bad name, value or flag) prints one line
naming the field and what is allowed, and exits with code 2 before anything is written.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from rethinking_jax import configs
from rethinking_jax.errors import UserError

# Exit status: 0 the run finished (its summary says what each member did); 2 a user mistake or
# a predictable fault (one line, nothing written); 3 stopped by SIGTERM/SIGINT/SIGHUP with a
# checkpoint (rerun the command to resume); 4 the run finished but every member diverged.
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3
EXIT_ALL_DIVERGED = 4
# Faults of the machine rather than of the code, reported in one line (errno -> what to do).
_DISK_FAULTS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EIO: "input/output error",
                errno.EFBIG: "file size limit exceeded"}

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the run's outputs.")


def _fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(EXIT_USAGE)


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)?: ")


def _one_line(err: BaseException) -> str:
  """The message of `err` on one line; when it embeds a traceback (config_flags wraps errors
  raised while loading a config file that way), only the innermost exception's message."""
  text = str(err)
  if "Traceback (most recent call last)" in text:
    lines = [line.strip() for line in text.splitlines() if _EXCEPTION_LINE.match(line.strip())]
    if lines:
      return lines[-1].split(": ", 1)[1]
  if isinstance(err, SyntaxError):
    return f"{err.filename}, line {err.lineno}: {err.msg}"
  return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _shipped_config(argv) -> list[str]:
  """argv with a `--config` that names no file here but a config the package ships
  (configs.shipped) pointing at that file."""
  out = []
  for arg in argv:
    if arg.startswith("--config="):
      path, sep, rest = arg[len("--config="):].partition(":")
      arg = f"--config={configs.shipped(path) or path}{sep}{rest}"
    out.append(arg)
  return out


def _config_import_root(argv) -> None:
  """A config of one's own may import its package (`from myconfigs import common`): put the
  directory above a `--config` file's package on sys.path, so that
  `--config=/path/to/myconfigs/table.py` works from any working directory."""
  for arg in argv:
    if arg.startswith("--config="):
      folder = os.path.dirname(os.path.abspath(arg[len("--config="):].partition(":")[0]))
      if os.path.isfile(os.path.join(folder, "__init__.py")):
        root = os.path.dirname(folder)
        if root not in sys.path:
          sys.path.insert(0, root)


_HELP_FLAGS = ("-h", "--help", "-?", "--helpshort", "--helpfull")
_USAGE = """\
usage: rethinking-jax [train] --config=CONFIG.py[:ARG] --workdir=DIR [--config.FIELD=VALUE ...]
       (or python -m rethinking_jax.main ...)
       rethinking-jax report --workdir=DIR [--sources=DIR,...]   re-render a report
       rethinking-jax measures --workdir=DIR [--examples=N]      complexity measures

  --config=PATH[:ARG]     a config file (configs/*.py) and its optional argument, e.g.
                          configs/quickstart.py, configs/table1.py:mlp,seeds=3; the
                          package's own (rethinking_jax/configs) by name from anywhere:
                          table1.py:smoke
  --workdir=DIR           the run's outputs: checkpoints, metrics.jsonl, summary.json,
                          report.md (a previous run's workdir resumes it)
  --config.FIELD=VALUE    override one field, e.g. --config.num_epochs=20
  --help                  this text; with --config=PATH[:ARG]: that config's variants
                          (its docstring) and every field with its value

Exit status: 0 done; 2 a user mistake or a predictable fault (one line, nothing written);
3 stopped by SIGTERM/SIGINT/SIGHUP with a checkpoint (rerun to resume); 4 every member
diverged; 130 Ctrl-C before training began.
Every field and its default: rethinking_jax/base_config.py. Examples: README.md, docs/running.md."""


def _config_file(argv) -> tuple[str, str] | None:
  """(path, argument) of the last --config=PATH[:ARG] of `argv`, or None."""
  given = [a[len("--config="):] for a in argv if a.startswith("--config=")]
  if not given:
    return None
  path, _, arg = given[-1].partition(":")
  return path, arg


def _help(argv) -> None:
  """Prints the usage (and, with --config, that config's variants and fields); exits 0."""
  import runpy

  print(_USAGE)
  named = _config_file(argv)
  if named:
    path, arg = named
    _check_config_path(path)
    try:
      module = runpy.run_path(path)
      config = module["get_config"](arg or None)
    except Exception as err:  # noqa: BLE001 -- a config that does not load: one line
      _fail(f"config: {_one_line(err)}")
    print(f"\n{path}:\n{(module.get('__doc__') or '(no docstring)').strip()}\n")
    print(f"fields of {path}{':' + arg if arg else ''} (--config.FIELD=VALUE):")
    for key in sorted(config.keys()):
      value = config[key]
      shown = (f"{{{', '.join(sorted(value.keys()))}}}" if hasattr(value, "keys")
               else repr(value))
      print(f"  {key} = {shown}")
  sys.exit(0)


def parse_flags(argv):
  """absl flag parsing with one-line errors and exit code 2 (absl prints usage, exits 1)."""
  argv = _shipped_config(argv)
  _config_import_root(argv)
  if any(a in _HELP_FLAGS for a in argv[1:]):
    _help(argv)
  named = _config_file(argv)
  if named:
    _check_config_path(named[0])
  try:
    return flags.FLAGS(argv)
  except AttributeError as err:
    if "get_config" in str(err):  # config_flags found no get_config in the file
      _fail(f"config: {named[0] if named else 'the file'} defines no get_config(); a config "
            "file defines get_config(arg=None) returning an ml_collections.ConfigDict (e.g. "
            "configs/quickstart.py)")
    _unknown_field(argv, err)
  except KeyError as err:  # --config.FIELD the config does not have
    _unknown_field(argv, err)
  except flags.Error as err:
    _fail(_one_line(err) or type(err).__name__)
  except Exception as err:  # noqa: BLE001 -- a config file that does not load: one line
    _fail(f"config: {_one_line(err)}")


def _configs_in(folder: str) -> list[str]:
  return sorted(n for n in os.listdir(folder) if n.endswith(".py") and "def get_config"
                in Path(folder, n).read_text(errors="replace"))


def _check_config_path(path: str) -> None:
  """--config names a file: one line for a folder (naming its configs) or a missing path."""
  if os.path.isdir(path):
    found = _configs_in(path)
    _fail(f"config: {path} is a folder; allowed: a config file"
          + (f" in it: {', '.join(found)}" if found else ", e.g. configs/quickstart.py"))
  if not os.path.isfile(path):
    _fail(f"config: {path} does not exist (--config=PATH[:ARG] names a config file, or one "
          f"the package ships: {', '.join(_configs_in(configs.FOLDER))})")


def _unknown_field(argv, err: Exception) -> None:
  """The one line for --config.FIELD that the config does not have."""
  # ml_collections' message: "'name'\nDid you mean ...?" (escaped once more by KeyError).
  found = re.search(r"[\w.]+", str(err.args[0] if err.args else "?"))
  field = found.group(0) if found else "?"
  paths = [a[len("--config."):].split("=")[0] for a in argv if a.startswith("--config.")]
  nested = [path for path in paths if "." in path and path.rsplit(".", 1)[1] == field]
  if nested:  # --config.runs.NAME.FIELD: the run has no such field
    _fail(f"config: unknown field {nested[0]!r} (that run does not set {field}; a "
          f"command-line --config.{field} applies to the runs that do not)")
  fields = _config_fields(argv)
  close = difflib.get_close_matches(field, fields, n=3)
  hint = (f"did you mean {' or '.join(close)}? " if close else "") + (
      "every field and its default: configs/default.py (rethinking_jax/base_config.py)")
  _fail(f"config: unknown field {field!r}; {hint}")


def _config_fields(argv) -> list[str]:
  """The fields of the config file named on the command line (for an error message)."""
  import runpy

  for arg in argv:
    if arg.startswith("--config="):
      path, _, config_arg = arg[len("--config="):].partition(":")
      try:
        get_config = runpy.run_path(path)["get_config"]
        return sorted((get_config(config_arg) if config_arg else get_config()).keys())
      except Exception:  # only for the message; the real error is reported anyway
        return []
  return []


def _load_config():
  """The parsed config; a file that is missing or fails to load is a one-line error."""
  try:
    config = _CONFIG.value
    if config is None:
      _fail("--config is required, e.g. --config=configs/quickstart.py")
    config.keys()  # config_flags defers load errors until the config is first used
    return config
  except UserError as err:
    _fail(str(err))
  except Exception as err:  # noqa: BLE001 -- any failure to load the user's config file
    _fail(f"config: {_one_line(err)}")


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
    _fail(f"JAX_PLATFORMS: {asked!r} is not available on this machine{here}; allowed: cpu, "
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


EXIT_CTRL_C = 130  # the shell's code for a process ended by SIGINT


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}")
  config = _load_config()
  if not _WORKDIR.value:
    _fail("--workdir is required, e.g. --workdir=runs/quickstart")
  from rethinking_jax import xla_cpu

  try:
    xla_cpu.apply(config.get("conv_impl", "auto"))  # XLA reads its flags once: first
  except UserError as err:
    _fail(str(err))
  if config.get("distributed") or os.environ.get("JAX_COORDINATOR_ADDRESS"):
    import jax  # before anything touches the backend

    # Arguments from the environment (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
    # JAX_PROCESS_ID) or detected on TPU pods, SLURM and Open MPI.
    jax.distributed.initialize()
  _check_platforms()
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_quiet_libraries)
  _quiet_hooks()
  from rethinking_jax.engine import compile_cache

  compile_cache.enable()  # a program compiled once per machine (engine/compile_cache.py)
  try:
    _run(config)
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


def _run(config):
  from rethinking_jax import suite  # heavy imports: late
  from rethinking_jax.train import Interrupted, train_and_evaluate

  try:
    experiment = config.get("experiment", "train")
    if experiment != "train":
      if experiment == "fooling":
        from rethinking_jax.fooling import run as runner
      else:
        from rethinking_jax.theory import experiments as runner
      runner.run(config, _WORKDIR.value)
      print(f"done: {experiment}; report: {_WORKDIR.value}/report.md")
      return
    if suite.is_suite(config):
      result = suite.run_suite(config, _WORKDIR.value)
      print(f"done: {len(result['runs'])} runs; report: {result['report']}")
      return
    summary = train_and_evaluate(config, _WORKDIR.value)
  except UserError as err:
    _fail(str(err))
  except Interrupted as err:
    print(f"interrupted: {err}", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)
  run = summary["run"]
  print(f"done: {run['stop_reason']} after {run['epochs']} epochs; "
        f"report: {_WORKDIR.value}/report.md")
  if run["stop"] == "diverged":
    sys.exit(EXIT_ALL_DIVERGED)


def run():
  """The `rethinking-jax` console command (pyproject.toml) and `python -m`. Ctrl-C before
  training began (SIGINT's handler is installed only then: stop_signals.StopSignals) is one line
  and exit 130, not a traceback from wherever it landed."""
  try:
    app.run(main, flags_parser=parse_flags)
  except KeyboardInterrupt:
    print("interrupted: Ctrl-C before training began; the workdir holds no new checkpoint "
          "(its previous ones, if any, are intact): rerun the same command to start",
          file=sys.stderr, flush=True)
    sys.exit(EXIT_CTRL_C)


if __name__ == "__main__":
  run()
