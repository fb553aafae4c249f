"""python -m rethinking_jax.measures --workdir=DIR [--examples=N] [--checkpoints=latest|all]"""

from __future__ import annotations

import sys

from absl import app, flags, logging

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run's workdir.")
_EXAMPLES = flags.DEFINE_integer("examples", 4096, "Training examples for margins/sharpness.")
_CHECKPOINTS = flags.DEFINE_enum("checkpoints", "latest", ["latest", "all"],
                                 "Measure the newest checkpoint or every kept one.")


def main(argv):
  from rethinking_jax.base.errors import UserError
  from rethinking_jax.measures import study

  logging.set_verbosity(logging.WARNING)  # orbax's INFO chatter
  if len(argv) > 1 or not _WORKDIR.value:
    print("error: --workdir=DIR is required (a trained run's workdir)", file=sys.stderr)
    sys.exit(2)
  if _EXAMPLES.value < 1:
    print(f"error: examples: {_EXAMPLES.value} must be >= 1", file=sys.stderr)
    sys.exit(2)
  try:
    rows = study.measure_run(_WORKDIR.value, _EXAMPLES.value, _CHECKPOINTS.value,
                             say=lambda text: print(f"measures: {text}", file=sys.stderr,
                                                    flush=True))
    print(f"measures: {study.write_report(_WORKDIR.value, rows, _EXAMPLES.value)}")
  except UserError as err:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)


def run() -> None:
  """`rethinking-jax measures` (rethinking_jax/cli.py) and `python -m rethinking_jax.measures`."""
  app.run(main)


if __name__ == "__main__":
  run()
