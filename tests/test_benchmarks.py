"""The GPU suite script runs at a tiny scale on the CPU (its --tiny flag)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_gpu_suite_tiny_runs_on_cpu(tmp_path):
  env = {**os.environ, "PYTHON": sys.executable}
  proc = subprocess.run(["bash", "benchmarks/gpu_suite.sh", str(tmp_path), "--tiny"], cwd=ROOT,
                        capture_output=True, text=True, timeout=300, env=env)
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
  log = (tmp_path / "log.txt").read_text()
  assert "gpu_suite" in log and "done:" in log
  for dtype in ("float32", "bfloat16"):
    result = json.loads((tmp_path / f"memorization_mlp_1x512_{dtype}.json").read_text())
    assert result["args"]["dtype"] == dtype and result["matmul_peak_gflops"] > 0
    forms = {(r["framework"], r["form"]) for r in result["rows"]}
    assert ("jax", "1 member(s), sequential") in forms and ("jax", "2 member(s), vmap") in forms
    if importlib.util.find_spec("torch") is not None:
      assert ("torch", "optimized") in forms and ("torch", "typical") in forms
    for row in result["rows"]:
      assert row["examples_per_second"] > 0 and row["flops_per_example"] > 0
      assert 0 < row["mfu"] < 5


def test_torch_reference_models_have_the_papers_parameter_counts():
  import pytest

  torch = pytest.importorskip("torch")  # the `torch` extra; skipped in the default install
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  import torch_reference

  from rethinking_jax.models import PAPER_PARAM_COUNTS

  for name in ("mlp_1x512", "mlp_3x512", "alexnet_small", "inception_small"):
    model = torch_reference.build(name, (3, 28, 28))
    assert sum(p.numel() for p in model.parameters()) == PAPER_PARAM_COUNTS[name]
    assert model(torch.zeros(2, 3, 28, 28)).shape == (2, 10)
