"""Threads, core pinning and load: set before jax or torch is imported, recorded per row.

On a shared 2-core VM a 2-thread ratio measures the other tenant as much as the code
(PyTorch's OpenMP threads lose up to 8x when a core is taken, XLA's pool does not), so every
benchmark row carries the threads, the pinned cores and /proc/loadavg at its start and end.
"""

from __future__ import annotations

import os

from rethinking_jax.engine import xla_cpu  # no jax import: safe before the backend opens


def add_flags(parser) -> None:
  parser.add_argument("--threads", type=int, default=0,
                      help="threads for XLA:CPU and PyTorch (0: the library's default)")
  parser.add_argument("--pin", default="",
                      help="comma-separated CPU cores to run on (sched_setaffinity), e.g. 1")
  parser.add_argument("--conv_impl", default="auto", choices=xla_cpu.CONV_IMPLS,
                      help="XLA:CPU's convolution library (rethinking_jax/engine/xla_cpu.py)")


def configure(threads: int, pin: str, conv_impl: str = "auto") -> dict:
  """Pins this process, caps the threads of XLA:CPU and PyTorch and picks XLA's convolution
  library. Call before the first computation (importing jax is fine): XLA reads its flags and
  sizes its pool from the cores it may run on when its backend opens, OpenMP reads its
  variables once."""
  if pin:
    os.sched_setaffinity(0, {int(c) for c in pin.split(",")})
  if threads:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
      os.environ[var] = str(threads)
    if threads == 1:  # Eigen's intra-op pool off; one core left to XLA's thunks
      os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                 + " --xla_cpu_multi_thread_eigen=false").strip()
  return {**setting(threads), "conv_impl": xla_cpu.apply(conv_impl)}


def setting(threads: int = 0) -> dict:
  return {"threads": threads or "default", "cores": sorted(os.sched_getaffinity(0)),
          "cpu": xla_cpu.cpu_model(), "cpu_isa": xla_cpu.cpu_isa()}


def loadavg() -> str:
  """The 1, 5 and 15 minute load averages ('' where /proc is absent)."""
  try:
    with open("/proc/loadavg") as f:
      return " ".join(f.read().split()[:3])
  except OSError:
    return ""
