"""Which library runs the convolutions on XLA:CPU: `conv_impl` (a process-wide compiler flag).

jaxlib 0.10.2 hands each convolution to YNNPACK (`ynn`), which runs it on one thread, or,
with YNNPACK's convolutions switched off, to Eigen's convolution (`eigen`), which uses every
core XLA may run on. `auto` is `eigen`, measured on the 2-core VM (benchmarks/RESULTS.md):
- two cores (2026-12-03, `layer_profile.py`, one SGD step at batch 128): small AlexNet
  `eigen` 592 vs `ynn` 389 ex/s; small Inception `eigen` 72.7, against 29.8 for `ynn` on one;
- one pinned core (2026-12-04, `engine_throughput.py`, the engine's step, alternated): small
  Inception `eigen` 83 / 84 vs `ynn` 67 / 66 ex/s (YNNPACK's 1x1 convolutions run 2.3-3.4x slower
  than Eigen's); small AlexNet `eigen` 693 / 738 vs `ynn` 717 / 733, a tie (on 2026-12-03's
  CPU, 376 vs 394 in `layer_profile.py`: within its noise).
Dots stay with YNNPACK either way (the MLPs are unaffected), and the two give the same
numbers up to float rounding (another order of the convolution's sums).

XLA reads its flags once, when JAX first opens its backend: `apply` must run before that
(process.prepare_backend and assemble.prepare call it); later it only reports what is in effect.
"""

from __future__ import annotations

import os

from absl import logging

from rethinking_jax.base.errors import unknown_name

CONV_IMPLS = ("auto", "ynn", "eigen")
_YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
_EIGEN = f"{_YNN_FLAG}=-individual_convolution"


def _cpuinfo(field: str) -> str | None:
  """The first `field` line's value in /proc/cpuinfo (None where there is none)."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith(field):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return None


def cpu_model() -> str:
  """The CPU's model name ('unknown' where /proc/cpuinfo says none): recorded beside every
  run's and benchmark's figures, since float results and speeds differ between CPU models."""
  return _cpuinfo("model name") or "unknown"


# The vector extensions that change which kernels XLA:CPU compiles for this host, hence the
# float rounding of a run: "AMD EPYC" names both AVX2-only and AVX-512 generations.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile")


def cpu_isa() -> str:
  """The ISA_FLAGS this CPU has, space-separated ('' where /proc/cpuinfo says none)."""
  have = set((_cpuinfo("flags") or "").split())
  return " ".join(flag for flag in ISA_FLAGS if flag in have)


def resolve(conv_impl: str) -> str:
  """`auto`: `eigen`, on any number of cores (the measurements are in the docstring)."""
  if conv_impl not in CONV_IMPLS:
    raise unknown_name("conv_impl", conv_impl, CONV_IMPLS)
  return "eigen" if conv_impl == "auto" else conv_impl


def in_effect(xla_flags: str | None = None) -> str:
  """The convolution library that XLA_FLAGS selects (`ynn` unless YNNPACK's convolutions
  are switched off by the last ynn_fusion_type flag)."""
  flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
  values = [f.split("=", 1)[1] if "=" in f else "" for f in flags.split()
            if f.split("=", 1)[0] == _YNN_FLAG]
  if not values:
    return "ynn"
  items = [v for v in values[-1].split(",") if v]
  if items and all(v[0] in "+-" for v in items):  # edits of the default list
    return "eigen" if "-individual_convolution" in items else "ynn"
  return "ynn" if "individual_convolution" in items else "eigen"  # the whole list


def _backend_started() -> bool:
  try:
    from jax._src import xla_bridge
    return xla_bridge.backends_are_initialized()
  except (ImportError, AttributeError):  # a jax without the helper: assume started
    return True


def apply(conv_impl: str) -> str:
  """Selects the convolution library for this process if JAX has not opened its backend
  yet; returns the one in effect (which differs from the request only when the backend was
  already open: said in the log)."""
  wanted = resolve(conv_impl)
  current = in_effect()
  if wanted == current:
    return current
  if _backend_started():
    logging.warning("conv_impl=%s: JAX's backend is already open with %s convolutions; "
                    "XLA reads its flags only once per process (keeping %s)", conv_impl,
                    current, current)
    return current
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if f.split("=")[0] != _YNN_FLAG]
  os.environ["XLA_FLAGS"] = " ".join(flags + ([_EIGEN] if wanted == "eigen" else []))
  return wanted
