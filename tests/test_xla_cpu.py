"""conv_impl: which library XLA:CPU runs convolutions with (rethinking_jax/xla_cpu.py)."""

import os
import shutil
import subprocess
import sys

import pytest

from rethinking_jax import xla_cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def test_auto_is_onednn_where_it_runs_else_eigen(monkeypatch):
  monkeypatch.setattr(xla_cpu, "_status", {"onednn": (True, "3.2.0")})
  assert xla_cpu.resolve("auto") == "onednn"
  assert xla_cpu.conv_form("xla", "auto", "cpu") == "onednn"
  assert xla_cpu.conv_form("per_member", "auto", "cpu") == "onednn"
  assert xla_cpu.conv_form("patches", "auto", "cpu") == "patches"  # matmuls: kept
  assert xla_cpu.conv_form("xla", "auto", "gpu") == "xla"
  assert xla_cpu.conv_form("xla", "eigen", "cpu") == "xla"
  monkeypatch.setattr(xla_cpu, "_status", {"onednn": (False, "no oneDNN")})
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
print(xla_cpu.apply("ynn" if xla_cpu.in_effect() == "eigen" else "eigen"))  # too late
"""


@pytest.mark.parametrize("conv_impl,xla_library,ynn_fused", [
    ("ynn", "ynn", True), ("eigen", "eigen", False), ("onednn", "eigen", False)])
def test_apply_sets_the_library_before_the_backend_opens(conv_impl, xla_library, ynn_fused):
  """(XLA keeps the convolutions a oneDNN run leaves it -- the patches strategy's gathers --
  on Eigen's.)"""
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",
                                                          "JAX_DISABLE_MOST_OPTIMIZATIONS")}
  out = subprocess.run([sys.executable, "-c", _PROBE, conv_impl], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120, check=True).stdout.split()
  assert out == [xla_library, str(ynn_fused), xla_library]


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


def test_the_onednn_build_fails_in_one_line_naming_the_fix(monkeypatch, tmp_path):
  from rethinking_jax.models import onednn
  monkeypatch.setattr(onednn, "_prefixes", lambda: [tmp_path])
  with pytest.raises(onednn.Unavailable, match=r"^conv_impl=onednn: no oneDNN .* pip install "
                     r"-e '\.\[onednn\]' .*conv_impl=eigen$"):
    onednn.library_path()
  (tmp_path / "include" / "oneapi" / "dnnl").mkdir(parents=True)
  (tmp_path / "include" / "oneapi" / "dnnl" / "dnnl.hpp").write_text("#error broken\n")
  (tmp_path / "lib").mkdir()
  (tmp_path / "lib" / "libdnnl.so").write_text("")
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  monkeypatch.setenv("CXX", "no-such-compiler")
  with pytest.raises(onednn.Unavailable, match="^conv_impl=onednn: no C\\+\\+ compiler"):
    onednn.library_path()
  monkeypatch.delenv("CXX")
  if shutil.which("g++") is None:
    pytest.skip("no g++ here")
  with pytest.raises(onednn.Unavailable, match="^conv_impl=onednn: building onednn_conv.cc "
                     "failed: .*broken.*; install"):
    onednn.library_path()
  assert not list((tmp_path / "cache").rglob("*.so*"))  # nothing half-written is left
