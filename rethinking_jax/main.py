"""Command line: python -m rethinking_jax.main --config=configs/NAME.py[:ARG] --workdir=DIR.

Overrides: --config.FIELD=VALUE. A user mistake (bad name, value or flag) prints one line
naming the field and what is allowed, and exits with code 2 before anything is written
(command_line.py); the machine's faults and the exit statuses: process.py.
"""

from __future__ import annotations

import sys

from absl import app, flags
from ml_collections import config_flags

from rethinking_jax import command_line
from rethinking_jax.run import process

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the run's outputs.")


def main(argv):
  """Runs the config's experiment (a training run, a suite of runs, fooling images, a theory
  experiment) into --workdir; main -> train_and_evaluate -> ... -> the jitted step is a few
  calls (tests/test_engine.py counts them)."""
  if len(argv) > 1:
    process.fail(f"unexpected arguments: {' '.join(argv[1:])}")
  config, workdir = command_line.load_config(_CONFIG), _WORKDIR.value
  if not workdir:
    process.fail("--workdir is required, e.g. --workdir=runs/quickstart")
  process.prepare_backend(config)
  from rethinking_jax.run import suite  # heavy imports: late
  from rethinking_jax.run.train import train_and_evaluate

  with process.faults_in_one_line():
    experiment = config.get("experiment", "train")
    if experiment != "train":
      if experiment == "fooling":
        from rethinking_jax.fooling import run as runner
      else:
        from rethinking_jax.theory import experiments as runner
      runner.run(config, workdir)
      print(f"done: {experiment}; report: {workdir}/report.md")
    elif suite.is_suite(config):
      result = suite.run_suite(config, workdir)
      print(f"done: {len(result['runs'])} runs; report: {result['report']}")
    else:
      run = train_and_evaluate(config, workdir)["run"]
      print(f"done: {run['stop_reason']} after {run['epochs']} epochs; "
            f"report: {workdir}/report.md")
      if run["stop"] == "diverged":
        sys.exit(process.EXIT_ALL_DIVERGED)


def run():
  """The `rethinking-jax train` command (cli.py) and `python -m rethinking_jax.main`."""
  try:
    app.run(main, flags_parser=command_line.parse_flags)
  except KeyboardInterrupt:
    process.ctrl_c_before_training()


if __name__ == "__main__":
  run()
