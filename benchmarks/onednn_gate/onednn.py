"""Issue #38's decision-gate prototype: oneDNN's convolutions inside the jitted step, through
XLA's FFI. Not part of the package: the gate (the whole small-Inception step >= 1.3x faster
than with XLA's convolutions) was not met on 2026-12-07's VM (benchmarks/RESULTS.md).

`onednn_conv.cc` wraps oneDNN's float32 NHWC forward, input-gradient and kernel-gradient
primitives as XLA FFI handlers; this module builds it once per machine with g++ against PyPI's
`onednn-cpu-gomp` + `onednn-devel-cpu-gomp` (oneDNN 3.2; `pip install onednn-cpu-gomp==2023.2.0
onednn-devel-cpu-gomp==2023.2.0`), registers the handlers and gives the convolution a custom
VJP of the three calls; under vmap each call loops over the members, unrolled.
`in_models()` makes the project's conv nets trace with it (benchmarks/layer_profile.py's
`jax:onednn` form); `check.py` compares it with lax's convolution.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax import lax

_SOURCE = Path(__file__).with_name("onednn_conv.cc")
_TARGETS = {"forward": "OnednnConvForward", "input_grad": "OnednnConvInputGrad",
            "kernel_grad": "OnednnConvKernelGrad"}
_FIX = ("pip install onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0 and put g++ "
        "on PATH")
_lock = threading.Lock()
_loaded: dict[str, object] = {}


class Unavailable(RuntimeError):
  """oneDNN's convolutions cannot be built or loaded here; the message names the fix."""


def _prefixes() -> list[Path]:
  """Where a oneDNN install may be: this environment's prefix (the PyPI wheels install their
  headers and library there), then RETHINKING_JAX_ONEDNN_ROOT, then the system's."""
  roots = [os.environ.get("RETHINKING_JAX_ONEDNN_ROOT"), sys.prefix, "/usr/local", "/usr"]
  return [Path(r) for r in roots if r]


def _find_onednn() -> Path:
  for root in _prefixes():
    if (root / "include" / "oneapi" / "dnnl" / "dnnl.hpp").exists() and any(
        (root / "lib").glob("libdnnl.so*")):
      return root
  raise Unavailable(f"onednn_gate: no oneDNN (oneapi/dnnl/dnnl.hpp and libdnnl.so) "
                    f"under {', '.join(map(str, _prefixes()))}; {_FIX}")


def _cache_dir() -> Path:
  base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
  return Path(base) / "rethinking_jax" / "onednn_gate"


def library_path() -> Path:
  """The built handler library for this source, jaxlib and oneDNN (built here if absent)."""
  root = _find_onednn()
  compiler = shutil.which(os.environ.get("CXX", "g++"))
  if compiler is None:
    raise Unavailable(f"onednn_gate: no C++ compiler ({os.environ.get('CXX', 'g++')}) "
                      f"on PATH to build the oneDNN handlers; {_FIX}")
  libdnnl = sorted((root / "lib").glob("libdnnl.so*"))[-1]
  key = hashlib.sha256(_SOURCE.read_bytes() + jax.ffi.include_dir().encode()
                       + str(libdnnl.resolve()).encode() + jax.__version__.encode())
  target = _cache_dir() / key.hexdigest()[:16] / "libonednn_conv.so"
  if target.exists():
    return target
  target.parent.mkdir(parents=True, exist_ok=True)
  partial = target.with_suffix(f".so.{os.getpid()}.tmp")
  command = [compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-w",
             f"-I{jax.ffi.include_dir()}", f"-I{root / 'include'}", str(_SOURCE),
             f"-L{root / 'lib'}", "-ldnnl", f"-Wl,-rpath,{root / 'lib'}", "-o", str(partial)]
  logging.info("onednn_gate: building the oneDNN handlers once for this machine "
               "(%s, ~5 s) into %s", compiler, target.parent)
  done = subprocess.run(command, capture_output=True, text=True)
  if done.returncode != 0:
    partial.unlink(missing_ok=True)
    lines = done.stderr.strip().splitlines() or ["(no output)"]
    first = next((line for line in lines if "error" in line), lines[-1]).strip()
    raise Unavailable(f"onednn_gate: building {_SOURCE.name} failed: {first}; {_FIX}")
  os.replace(partial, target)  # atomic: a second process sees a whole library or none
  return target


def load() -> str:
  """Builds (once) and registers the handlers; returns oneDNN's version. Raises Unavailable
  with a one-line reason and fix."""
  with _lock:
    if "version" not in _loaded:
      path = library_path()
      try:
        lib = ctypes.CDLL(str(path))
      except OSError as e:
        raise Unavailable(f"onednn_gate: cannot load {path}: {e}; {_FIX}") from None
      for name, symbol in _TARGETS.items():
        jax.ffi.register_ffi_target(f"rethinking_jax_onednn_{name}",
                                    jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
      lib.OnednnVersion.restype = ctypes.c_char_p
      _loaded["version"] = lib.OnednnVersion().decode()
    return _loaded["version"]


# --- the convolution ----------------------------------------------------------------------

def _call(name, shape, *args, **geometry):
  attrs = {k: np.int64(v) for k, v in geometry.items()}
  return jax.ffi.ffi_call(f"rethinking_jax_onednn_{name}",
                          jax.ShapeDtypeStruct(shape, jnp.float32),
                          vmap_method="sequential_unrolled")(*args, **attrs)


def _geometry(strides, pads):
  (sh, sw), ((pt, pb), (pl, pr)) = strides, pads
  return dict(sh=sh, sw=sw, pt=pt, pb=pb, pl=pl, pr=pr)


def _out_shape(x_shape, w_shape, strides, pads):
  n, h, w, _ = x_shape
  kh, kw, _, o = w_shape
  (sh, sw), ((pt, pb), (pl, pr)) = strides, pads
  return (n, (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1, o)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x, w, strides, pads):
  """NHWC x HWIO -> NHWC, float32; `pads` explicit ((top, bottom), (left, right))."""
  return _call("forward", _out_shape(x.shape, w.shape, strides, pads), x, w,
               **_geometry(strides, pads))


def _conv_fwd(x, w, strides, pads):
  return conv(x, w, strides, pads), (x, w)


def _conv_bwd(strides, pads, residuals, g):
  x, w = residuals
  geometry = _geometry(strides, pads)
  g_x = _call("input_grad", x.shape, g, w, **geometry)
  g_w = _call("kernel_grad", w.shape, x, g, **geometry)
  return g_x, g_w


conv.defvjp(_conv_fwd, _conv_bwd)


def conv_general_dilated(lhs, rhs, window_strides, padding, *, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         precision=None, preferred_element_type=None):
  """lax.conv_general_dilated's signature (what flax's nn.Conv calls): oneDNN where the
  convolution is one this path holds, lax otherwise."""
  dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  plain = (lhs.dtype == rhs.dtype == jnp.float32 and lhs.ndim == 4 and feature_group_count == 1
           and all(d in (None, 1) or tuple(d) == (1, 1) for d in (lhs_dilation, rhs_dilation))
           and preferred_element_type in (None, jnp.float32)
           and dn == lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                                ("NHWC", "HWIO", "NHWC")))
  if not plain:
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, precision=precision,
        preferred_element_type=preferred_element_type)
  load()
  strides = tuple(int(s) for s in window_strides)
  if isinstance(padding, str):
    pads = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
  else:
    pads = padding
  pads = tuple((int(lo), int(hi)) for lo, hi in pads)
  return conv(lhs, rhs, strides, pads)


@contextlib.contextmanager
def in_models():
  """Inside, the project's conv nets (AlexNet, the small Inceptions) trace with this
  convolution whatever their `conv` form; programs traced outside keep XLA's."""
  load()
  from rethinking_jax.models import alexnet, inception

  saved = {m: m.conv_general_dilated for m in (alexnet, inception)}
  for module in saved:
    module.conv_general_dilated = lambda form: conv_general_dilated
  try:
    yield
  finally:
    for module, original in saved.items():
      module.conv_general_dilated = original
