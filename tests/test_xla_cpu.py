"""conv_impl: which library XLA:CPU runs convolutions with (rethinking_jax/xla_cpu.py)."""

import os
import subprocess
import sys

import pytest

from rethinking_jax import xla_cpu

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
from rethinking_jax import xla_cpu
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
