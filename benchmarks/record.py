"""What every benchmark's JSON carries: the software and machine it ran on."""

import json
import os
import platform

import jax


def write_result(path: str, benchmark: str, args, rows, **extra) -> dict:
  """Builds the result record and, when `path` is given, writes it as JSON."""
  result = {"benchmark": benchmark, "jax": jax.__version__,
            "device": jax.devices()[0].device_kind, "platform": platform.platform(),
            "cpu_count": os.cpu_count(), **extra, "args": vars(args), "rows": rows}
  if path:
    with open(path, "w") as f:
      json.dump(result, f, indent=2)
  return result
