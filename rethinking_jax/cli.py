"""The `rethinking-jax` console command: `rethinking-jax [train|report|measures] FLAGS`.

Each subcommand is its own absl program with its own flags (each defines --workdir, so only
the one asked for is imported); without a subcommand it is `train`, as before subcommands
existed (`rethinking-jax --config=... --workdir=...`).
"""

from __future__ import annotations

import sys

COMMANDS = {
    "train": "train a config's run or suite: --config=CONFIG.py[:ARG] --workdir=DIR",
    "report": "re-render a workdir's report: --workdir=DIR [--sources=DIR,...]",
    "measures": "complexity measures of a trained run: --workdir=DIR [--examples=N]",
}
EXIT_USAGE = 2


def run() -> None:
  name = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "train"
  if name not in COMMANDS:
    print(f"error: command {name!r}: allowed: {', '.join(COMMANDS)} (without one: train)",
          file=sys.stderr)
    sys.exit(EXIT_USAGE)
  if len(sys.argv) > 1 and sys.argv[1] == name:
    sys.argv = [f"{sys.argv[0]} {name}", *sys.argv[2:]]
  if name == "train":
    from rethinking_jax import main as command
  elif name == "report":
    from rethinking_jax import report as command
  else:
    from rethinking_jax.measures import __main__ as command
  command.run()


if __name__ == "__main__":
  run()
