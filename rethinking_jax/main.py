"""Command line: python -m rethinking_jax.main --config=configs/NAME.py[:ARG] --workdir=DIR.

Overrides: --config.FIELD=VALUE. A user mistake (bad name, value or flag) prints one line
naming the field and what is allowed, and exits with code 2 before anything is written.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from rethinking_jax.errors import UserError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 3  # SIGTERM/SIGINT: a checkpoint was saved; rerun the command to resume

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the run's outputs.")


def _fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(EXIT_USAGE)


def _one_line(err: Exception) -> str:
  return " ".join(part.strip() for part in str(err).splitlines() if part.strip())


def parse_flags(argv):
  """absl flag parsing with one-line errors and exit code 2 (absl prints usage, exits 1)."""
  try:
    return flags.FLAGS(argv)
  except (KeyError, AttributeError) as err:  # --config.FIELD the config does not have
    field = str(err.args[0] if err.args else "?").strip("'\"")
    fields = _config_fields(argv)
    allowed = ", ".join(fields) if fields else "the fields of configs/default.py"
    _fail(f"config: unknown field {field!r}; allowed: {allowed}")
  except flags.Error as err:
    _fail(_one_line(err) or type(err).__name__)
  except (ValueError, TypeError, OSError) as err:
    _fail(f"config: {_one_line(err)}")


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


def _quiet_libraries(record) -> bool:
  """Keeps our INFO lines; drops the INFO chatter of orbax and other libraries."""
  return record.levelno >= 30 or "rethinking_jax" in record.pathname


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}")
  config = _load_config()
  if not _WORKDIR.value:
    _fail("--workdir is required, e.g. --workdir=runs/quickstart")
  if config.distributed or os.environ.get("JAX_COORDINATOR_ADDRESS"):
    import jax  # before anything touches the backend

    # Arguments from the environment (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
    # JAX_PROCESS_ID) or detected on TPU pods, SLURM and Open MPI.
    jax.distributed.initialize()
  from rethinking_jax import suite  # heavy imports: late
  from rethinking_jax.train import Interrupted, train_and_evaluate

  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_quiet_libraries)
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


def run():
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
