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
                        capture_output=True, text=True, timeout=900, env=env)
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
  log = (tmp_path / "log.txt").read_text()
  for part in ("profile", "formulations", "formulations_cmdbuf", "member_conv", "mlp",
               "inception", "inception_bf16", "alexnet"):
    assert f"part {part}: done after" in log, log[-3000:]
  profile = json.loads((tmp_path / "profile.json").read_text())["rows"][0]
  assert profile["top_kernels"] and 0 <= profile["idle_fraction"] < 1
  for part, members, strategies in (("formulations", [1, 2, 2, 2],
                                     ["sequential", "sequential", "hybrid", "patches"]),
                                    ("formulations_cmdbuf", [2], ["sequential"])):
    result = json.loads((tmp_path / f"{part}.json").read_text())
    assert result["partial"] is False
    assert [(r["members"], r["strategy"]) for r in result["rows"]] == list(
        zip(members, strategies, strict=True))
    assert all(("--xla_gpu_enable_command_buffer=" in r["xla_flags"])
               == (part == "formulations_cmdbuf") for r in result["rows"])
  have_torch = importlib.util.find_spec("torch") is not None
  for part, dtype in (("mlp", "float32"), ("inception_bf16", "bfloat16"),
                      ("alexnet", "float32")):
    result = json.loads((tmp_path / f"{part}.json").read_text())
    assert result["args"]["dtype"] == dtype and result["matmul_peak_gflops"] > 0
    assert result["partial"] is False
    forms = {(r["framework"], r["form"]) for r in result["rows"]}
    assert ("jax", "1 member(s), sequential") in forms
    if have_torch:
      assert {("torch", f) for f in ("typical", "optimized", "expert")} <= forms
    for row in result["rows"]:
      assert row["examples_per_second"] > 0 and row["flops_per_example"] > 0
      assert 0 < row["mfu"] < 5 and 0 <= row["final_train_acc"] <= 1
  mlp = json.loads((tmp_path / "mlp.json").read_text())
  assert ("jax", "2 member(s), auto (sequential)") in {(r["framework"], r["form"])
                                                      for r in mlp["rows"]}  # CPU
  summary = (tmp_path / "summary.md").read_text()
  assert "| mlp | mlp_1x512 | float32 | jax 2 member(s), vmap |" in summary
  assert json.loads((tmp_path / "member_conv.json").read_text())["partial"] is False
  assert "## Convolutions of E members" in summary
  assert "## Where one member's step goes" in summary and "## Member formulations" in summary


@pytest.mark.slow
def test_gpu_suite_runs_the_chosen_parts_with_the_threads_and_cores_given(tmp_path):
  env = {**os.environ, "PYTHON": sys.executable, "PARTS": "mlp", "THREADS": "1", "PIN": "0"}
  proc = subprocess.run(["bash", "benchmarks/gpu_suite.sh", str(tmp_path), "--tiny"], cwd=ROOT,
                        capture_output=True, text=True, timeout=900, env=env)
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
  assert sorted(p.name for p in tmp_path.glob("*.json")) == ["mlp.json"]
  assert "threads=1 pin=0 parts=mlp" in (tmp_path / "log.txt").read_text()
  for row in json.loads((tmp_path / "mlp.json").read_text())["rows"]:
    assert row["threads"] == 1 and row["cores"] == [0] and row["loadavg_start"]


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


def _member_conv():
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  import member_conv
  return member_conv


@pytest.mark.parametrize("lhs,rhs,strides,padding", [
    ((3, 9, 9, 5), (1, 1, 5, 4), (1, 1), ((0, 0), (0, 0))),   # an Inception 1x1
    ((3, 9, 9, 5), (3, 3, 5, 4), (2, 2), ((0, 1), (0, 1))),   # a strided SAME 3x3
    ((2, 8, 8, 3), (5, 5, 3, 6), (1, 1), ((2, 2), (2, 2))),   # AlexNet's 5x5
])
def test_every_member_conv_formulation_equals_the_vmapped_one(lhs, rhs, strides, padding):
  """Forward output and both gradients of E = 3 members, against what vmap emits."""
  import jax.numpy as jnp
  import numpy as np

  mc = _member_conv()
  shape = mc.ConvShape(lhs, rhs, strides, padding, 1)
  xs, ws, dys = mc.inputs(shape, 3, jnp.float32)
  reference = mc.forward_backward(mc.members_fn(shape, "vmap"))(xs, ws, dys)
  for form in mc.FORMULATIONS[1:]:
    got = mc.forward_backward(mc.members_fn(shape, form))(xs, ws, dys)
    for name, a, b in zip(("y", "dx", "dw"), got, reference, strict=True):
      a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
      assert a.shape == b.shape, (form, name)
      np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.max(np.abs(b)),
                                 err_msg=f"{form} {name}")


def test_member_conv_reads_every_convolution_of_the_model(tmp_path, monkeypatch):
  mc = _member_conv()
  shapes = mc.conv_shapes("alexnet_small", batch=2)
  assert [(s.lhs, s.rhs, s.count) for s in shapes] == [
      ((2, 28, 28, 3), (5, 5, 3, 64), 1), ((2, 14, 14, 64), (5, 5, 64, 64), 1)]
  # the small Inception: 1 + 2 per Inception module (8) + 1 per downsample module (2)
  assert sum(s.count for s in mc.conv_shapes("inception_small", batch=2)) == 1 + 16 + 2
  result = mc.main(["--tiny", "--models=alexnet_small", f"--json={tmp_path}/conv.json"])
  assert json.loads((tmp_path / "conv.json").read_text())["partial"] is False
  forms = {(r["formulation"], r["members"]) for r in result["rows"]}
  assert forms == {(f, 2) for f in (*mc.FORMULATIONS, "bn")}
  assert all(r["ms"] > 0 for r in result["rows"])
  # every row is on disk as soon as it is timed (a part cut by its time limit keeps them)
  written = []
  record = mc.write_result
  monkeypatch.setattr(mc, "write_result",
                      lambda *args, **kw: written.append((len(args[3]), kw["partial"]))
                      or record(*args, **kw))
  mc.main(["--tiny", "--models=alexnet_small", f"--json={tmp_path}/conv.json"])
  n = len(result["rows"])
  assert written == [(i, True) for i in range(1, n + 1)] + [(n, False)]


def test_stream_reader_benchmark_times_both_reader_kinds(tmp_path):
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  import stream_reader

  result = stream_reader.main(["--synthetic=40x30", "--synthetic_count=16", "--batch_size=8",
                               "--batches=2", "--workers=1,2", "--image_size=24",
                               "--readers=threads,processes",
                               f"--json={tmp_path / 'out.json'}"])
  rows = result["rows"]
  assert [(r["reader"], r["workers"]) for r in rows] == [
      ("threads", 1), ("threads", 2), ("processes", 1), ("processes", 2)]
  assert all(r["images_per_second"] > 0 and r["out_shape"] == [24, 24, 3] for r in rows)
  assert all(r["loadavg_start"] and r["loadavg_end"] and r["cores"] for r in rows)
  assert json.loads((tmp_path / "out.json").read_text())["rows"] == rows


def test_gpu_suite_without_jax_stops_with_one_line(tmp_path):
  """A python that cannot import jax (no venv active) is one line and exit 2, not five
  failed parts and an empty table."""
  env = {**os.environ, "PYTHON": "false"}
  proc = subprocess.run(["bash", "benchmarks/gpu_suite.sh", str(tmp_path / "out"), "--cpu"],
                        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      "error: PYTHON=false cannot import jax (activate the venv, or PYTHON=.venv/bin/python)"]
  assert not (tmp_path / "out").exists()  # nothing written


def test_engine_throughput_times_the_steps_it_reports(tmp_path):
  """The engine's train_chunk takes step bounds; passing epochs there timed 1-2 steps and
  printed 1.1M MLP examples/s on 2 cores. What catches that is the benchmark's own check of
  the state's step counter (it raises); the asserts below pin the step count the rows use."""
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  import engine_throughput

  result = engine_throughput.main([
      "--models=mlp_1x512", "--members=1,2", "--strategies=vmap,unrolled", "--num_train=512",
      "--batch_size=64", "--epochs=2", "--repeats=2", f"--json={tmp_path / 'out.json'}"])
  rows = result["rows"]
  assert [(r["members"], r["strategy"]) for r in rows] == [
      (1, "sequential"), (2, "vmap"), (2, "unrolled")]
  for r in rows:  # 512 / 64 = 8 steps per epoch, 2 epochs timed
    assert r["steps_per_second"] * r["seconds"] == pytest.approx(16)
    assert r["examples_per_second"] * r["seconds"] == pytest.approx(16 * 64 * r["members"])


def test_layer_profile_attributes_the_step_to_its_layers(monkeypatch, tmp_path):
  """benchmarks/layer_profile.py on a tiny batch: every JAX row is timed, and the profile
  puts XLA's ops where they belong -- the reference max-pool's select-and-scatter under
  'max-pool backward', the custom form's pooling and LRN gradients under their rows, the
  convolutions' three passes apart."""
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  import layer_profile

  monkeypatch.setattr(layer_profile, "BATCH", 4)
  monkeypatch.setattr(layer_profile, "SHAPE", (12, 12, 3))
  result = layer_profile.main(["--models=alexnet_small", "--forms=jax:xla,jax:custom",
                               "--warmup=1", "--seconds=0.2", "--rounds=1",
                               "--profile_steps=1", f"--json={tmp_path}/p.json"])
  assert [r["form"] for r in result["rows"]] == ["jax:xla", "jax:custom"]
  assert all(r["examples_per_second"] > 0 and r["loadavg_start"] for r in result["rows"])
  for form in ("jax:xla", "jax:custom"):
    profile = result["profiles"][f"alexnet_small {form}"]
    for row in ("conv forward", "conv input grad", "conv weight grad", "max-pool backward",
                "LRN forward", "LRN backward", "dense layers"):
      assert profile.get(row, 0) > 0, (form, row, profile)
  assert json.loads((tmp_path / "p.json").read_text())["benchmark"] == "layer_profile"


def test_step_profile_counts_device_stream_kernels_and_their_union():
  """A GPU trace's kernels are the events on its device's stream threads (not the host's,
  nor the derived "XLA Ops" line); busy time is the union of their intervals."""
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  import step_profile

  meta = lambda pid, tid, kind, name: {"ph": "M", "pid": pid, "tid": tid, "name": kind,
                                       "args": {"name": name}}
  span = lambda pid, tid, ts, dur, name: {"ph": "X", "pid": pid, "tid": tid, "ts": ts,
                                          "dur": dur, "name": name}
  events = [meta(1, None, "process_name", "/host:CPU"), meta(1, 5, "thread_name", "python"),
            meta(2, None, "process_name", "/device:GPU:0"),
            meta(2, 7, "thread_name", "Stream #13(compute)"),
            meta(2, 8, "thread_name", "Stream #14(memcpy)"),
            meta(2, 9, "thread_name", "XLA Ops"),
            span(1, 5, 0, 100, "PjitFunction"), span(2, 9, 0, 100, "fusion.1"),
            span(2, 7, 10, 20, "conv_kernel"), span(2, 8, 25, 10, "memcpy"),
            span(2, 7, 50, 5, "conv_kernel")]
  kernels, source = step_profile.kernel_events(events, instructions={})
  assert source == "device streams"
  assert sorted(e["name"] for e in kernels) == ["conv_kernel", "conv_kernel", "memcpy"]
  assert step_profile.busy_microseconds(kernels) == 25 + 5  # [10, 35) and [50, 55)
  host_kernels, source = step_profile.kernel_events(events[:2] + events[6:7],
                                                    instructions={"PjitFunction"})
  assert source.startswith("host") and len(host_kernels) == 1


def test_pointwise_conv_times_both_forms_of_every_shape(tmp_path):
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  import pointwise_conv

  result = pointwise_conv.main(["--batch=2", "--seconds=0.01", "--rounds=1",
                                f"--json={tmp_path / 'p.json'}"])
  assert [tuple(r["shape"]) for r in result["rows"]] == list(pointwise_conv.SHAPES)
  assert all(r["conv_ms"] > 0 and r["dot_ms"] > 0 and r["conv_impl"] for r in result["rows"])
  assert json.loads((tmp_path / "p.json").read_text())["benchmark"] == "pointwise_conv"
