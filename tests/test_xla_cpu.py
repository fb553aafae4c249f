"""conv_impl: which library XLA:CPU runs convolutions with (rethinking_jax/engine/xla_cpu.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import float32_gamma

from rethinking_jax.engine import xla_cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def test_auto_is_eigen():
  assert xla_cpu.resolve("auto") == "eigen"
  assert xla_cpu.resolve("ynn") == "ynn"
  with pytest.raises(Exception, match="conv_impl: unknown value 'mkl'"):
    xla_cpu.resolve("mkl")


@pytest.mark.parametrize("flags,library", [
    ("", "ynn"), (f"{FLAG}=-individual_convolution", "eigen"), (f"{FLAG}=", "eigen"),
    (f"{FLAG}=-individual_dot", "ynn"), (f"{FLAG}=individual_dot", "eigen"),
    (f"--xla_cpu_use_xnnpack=false {FLAG}=individual_convolution,individual_dot", "ynn"),
])
def test_in_effect_reads_xla_flags(flags, library):
  assert xla_cpu.in_effect(flags) == library


_PROBE = """
import sys
from rethinking_jax.engine import xla_cpu
print(xla_cpu.apply(sys.argv[1]))
import jax, jax.numpy as jnp
conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))
print("__ynn_fusion" in jax.jit(conv).lower(jnp.ones((8, 14, 14, 64)), jnp.ones((5, 5, 64, 64)))
      .compile().as_text())
print(xla_cpu.apply("eigen" if sys.argv[1] == "ynn" else "ynn"))  # too late: unchanged
"""


@pytest.mark.parametrize("conv_impl,ynn_fused", [("ynn", True), ("eigen", False)])
def test_apply_sets_the_library_before_the_backend_opens(conv_impl, ynn_fused):
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",
                                                          "JAX_DISABLE_MOST_OPTIMIZATIONS")}
  out = subprocess.run([sys.executable, "-c", _PROBE, conv_impl], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120, check=True).stdout.split()
  assert out == [conv_impl, str(ynn_fused), conv_impl]


def test_cpu_model_names_this_machines_processor():
  """Recorded beside every run's figures (summary.json) and benchmark row."""
  with open("/proc/cpuinfo") as f:
    names = {line.split(":", 1)[1].strip() for line in f if line.startswith("model name")}
  assert xla_cpu.cpu_model() in (names or {"unknown"})


def test_cpu_isa_lists_the_vector_extensions_this_cpu_has():
  with open("/proc/cpuinfo") as f:
    flags = next((set(line.split(":", 1)[1].split()) for line in f
                  if line.startswith("flags")), set())
  isa = xla_cpu.cpu_isa().split()
  assert isa == [flag for flag in xla_cpu.ISA_FLAGS if flag in flags]


# Each library's float32 convolution, forward and both gradients, against the float64 truth
# (numpy, below). Bound as in tests/test_member_conv.py: gamma_K * (the same sums over the
# terms' magnitudes), twice, K the number of terms of each output. Cases: the nets' 3x3
# stride 1 and 3x3/2 (SAME), a 1x1, a VALID 3x2 with strides (2, 1); wide enough channels
# that YNNPACK takes the forward convolution (checked in the compiled program).
_CASES = [((1, 1), ((1, 1), (1, 1)), (3, 3)), ((2, 2), ((0, 1), (0, 1)), (3, 3)),
          ((1, 1), ((0, 0), (0, 0)), (1, 1)), ((2, 1), ((0, 0), (0, 0)), (3, 2))]
_LIBRARY_PROBE = """
import sys
import numpy as np
from rethinking_jax.engine import xla_cpu
assert xla_cpu.apply(sys.argv[1]) == sys.argv[1]
import jax
cases, data, out = eval(sys.argv[3]), np.load(sys.argv[2]), {}
for i, (strides, pads, _) in enumerate(cases):
  conv = lambda x, w: jax.lax.conv_general_dilated(x, w, strides, pads,
                                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
  x, w, g = (data[f"{i}{a}"] for a in "xwg")
  fused = "__ynn_fusion" in jax.jit(conv).lower(x, w).compile().as_text()
  assert fused == (sys.argv[1] == "ynn"), (sys.argv[1], fused)
  y, vjp = jax.vjp(conv, x, w)
  for name, value in zip(("y", "dx", "dw"), (y, *vjp(g))):
    out[f"{i}{name}"] = np.asarray(value)
np.savez(sys.argv[2], **out)
"""


def _conv64(x, w, g, strides, pads):
  """Forward, input gradient and kernel gradient of a NHWC/HWIO convolution in float64."""
  (sh, sw), (kh, kw) = strides, w.shape[:2]
  xp = np.pad(x, ((0, 0), *pads, (0, 0)))
  ho, wo = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
  patches = np.stack([np.stack([xp[:, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw]
                                for b in range(kw)], 3) for a in range(kh)], 3)
  y = np.einsum("nijabc,abco->nijo", patches, w)
  dxp = np.zeros_like(xp)
  for a in range(kh):
    for b in range(kw):
      dxp[:, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw] += np.einsum(
          "nijo,co->nijc", g, w[a, b])
  dx = dxp[:, pads[0][0]:dxp.shape[1] - pads[0][1], pads[1][0]:dxp.shape[2] - pads[1][1]]
  return y, dx, np.einsum("nijabc,nijo->abco", patches, g)


@pytest.mark.parametrize("conv_impl", ["ynn", "eigen"])
def test_each_library_convolves_and_differentiates_within_float32_rounding(conv_impl, tmp_path):
  rng = np.random.default_rng(0)
  data, n, h, cin, cout = {}, 4, 10, 32, 32
  for i, (strides, pads, (kh, kw)) in enumerate(_CASES):
    x = rng.standard_normal((n, h, h, cin)).astype(np.float32)
    w = rng.standard_normal((kh, kw, cin, cout)).astype(np.float32)
    ho = (h + sum(pads[0]) - kh) // strides[0] + 1
    wo = (h + sum(pads[1]) - kw) // strides[1] + 1
    g = rng.standard_normal((n, ho, wo, cout)).astype(np.float32)
    data.update({f"{i}x": x, f"{i}w": w, f"{i}g": g})
  path = tmp_path / "conv.npz"
  np.savez(path, **data)
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",
                                                          "JAX_DISABLE_MOST_OPTIMIZATIONS")}
  subprocess.run([sys.executable, "-c", _LIBRARY_PROBE, conv_impl, str(path), repr(_CASES)],
                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True)
  got = np.load(path)
  for i, (strides, pads, (kh, kw)) in enumerate(_CASES):
    x, w, g = (data[f"{i}{a}"].astype(np.float64) for a in "xwg")
    truth = _conv64(x, w, g, strides, pads)
    size = _conv64(np.abs(x), np.abs(w), np.abs(g), strides, pads)
    ks = (kh * kw * cin, kh * kw * cout, n * g.shape[1] * g.shape[2])
    for name, k, want, s in zip(("y", "dx", "dw"), ks, truth, size, strict=True):
      excess = np.abs(got[f"{i}{name}"] - want) - 2 * float32_gamma(k) * s
      assert np.all(excess <= 0), (conv_impl, _CASES[i], name, float(excess.max()))
