"""Which library runs the convolutions on XLA:CPU: `conv_impl`.

- `onednn`: oneDNN's primitives (the library PyTorch's CPU convolutions run on) called inside
  the jitted step through XLA's FFI (models/onednn.py; the optional extra
  `pip install -e '.[onednn]'` and a C++ compiler). The models take it as their convolution
  function; whatever convolutions remain in XLA (the `patches` strategy's gathers) run on
  Eigen's.
- `eigen`: XLA:CPU's Eigen convolution, on every core XLA may run on (YNNPACK's convolutions
  switched off by a compiler flag).
- `ynn`: jaxlib 0.10.2's default, YNNPACK, one thread per convolution.
`auto` is `onednn` wherever its handlers build and load, else `eigen`, said once in the log.
Measured on the 2-vCPU VM (benchmarks/RESULTS.md, "oneDNN's convolutions"): one SGD step at
batch 128 of the small Inception with `onednn` 1.3-1.45x `eigen` pinned to one core and
~1.2x on two threads; the small AlexNet 1.23x pinned. Before it, `eigen` over `ynn`
(2026-12-03/04): small Inception 83 vs 67 ex/s pinned, 72.7 vs 29.8 on two cores; AlexNet a
tie pinned, 592 vs 389 on two cores. Dots stay with YNNPACK either way (the MLPs are
unaffected), and all three give the same numbers up to float rounding (another order of the
convolution's sums; tests/test_onednn.py, tests/test_member_conv.py).

XLA reads its flags once, when JAX first opens its backend: `apply` must run before that
(main.py and assemble.prepare call it); later it only reports what is in effect.
"""

from __future__ import annotations

import os

from absl import logging

from rethinking_jax.errors import UserError, unknown_name

CONV_IMPLS = ("auto", "ynn", "eigen", "onednn")
# The member strategies' convolution forms that oneDNN's convolutions replace (patches stays:
# its convolutions are matmuls).
_ONEDNN_REPLACES = ("xla", "per_member")
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


_status: dict[str, tuple[bool, str]] = {}
_warned: set[str] = set()


def onednn_status() -> tuple[bool, str]:
  """(True, oneDNN's version) where its handlers build and load here, else (False, the one-line
  reason naming the fix); built once per machine (models/onednn.py), asked once per process."""
  if "onednn" not in _status:
    from rethinking_jax.models import onednn  # only what asks for it loads the native library
    _status["onednn"] = onednn.available()
  return _status["onednn"]


def resolve(conv_impl: str) -> str:
  """`auto`: `onednn` where it is available, else `eigen` (why, said once in the log)."""
  if conv_impl not in CONV_IMPLS:
    raise unknown_name("conv_impl", conv_impl, CONV_IMPLS)
  if conv_impl != "auto":
    return conv_impl
  ok, reason = onednn_status()
  if not ok and "auto" not in _warned:
    _warned.add("auto")
    logging.warning("conv_impl=auto: Eigen's convolutions, since oneDNN's are unavailable "
                    "(%s)", reason.removeprefix("conv_impl=onednn: "))
  return "onednn" if ok else "eigen"


def conv_form(strategy_form: str, conv_impl: str, platform: str) -> str:
  """The models' convolution form (models/member_conv.CONV_FORMS) for a member strategy's
  `strategy_form`: `onednn` where conv_impl resolves to it on a CPU. An explicit `onednn`
  that cannot run here is a one-line UserError naming the fix."""
  if platform != "cpu":
    if conv_impl == "onednn":
      raise UserError(f"conv_impl: onednn runs on CPUs and this run's platform is {platform}; "
                      f"allowed here: auto, eigen, ynn (XLA:CPU settings, unused off CPUs)")
    return strategy_form
  if conv_impl == "onednn":
    ok, reason = onednn_status()
    if not ok:
      raise UserError(reason)
  if resolve(conv_impl) == "onednn" and strategy_form in _ONEDNN_REPLACES:
    return "onednn"
  return strategy_form


def library(conv_impl: str) -> str:
  """The library that runs a CPU run's model convolutions (what summary.json and the
  benchmarks record): `onednn`, or XLA's in effect."""
  return "onednn" if resolve(conv_impl) == "onednn" else in_effect()


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
  """Selects XLA's own convolution library for this process if JAX has not opened its
  backend yet: YNNPACK for `ynn`, else Eigen's (under `onednn` and `auto` too: the
  convolutions left to XLA). Returns XLA's library in effect, which differs from the request
  only when the backend was already open (said in the log)."""
  if conv_impl not in CONV_IMPLS:
    raise unknown_name("conv_impl", conv_impl, CONV_IMPLS)
  wanted = "ynn" if conv_impl == "ynn" else "eigen"
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
