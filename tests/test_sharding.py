"""Multi-device and multi-host runs (fake CPU devices, one subprocess per device setup)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from rethinking_jax.base.errors import UserError
from rethinking_jax.engine import sharding

# End to end in subprocesses (fake devices, loopback processes): the slow tier. Tests sharing
# the module's `runs` fixture run on one xdist worker, so it is computed once.
pytestmark = pytest.mark.slow
SHARED_RUNS = pytest.mark.xdist_group("sharding_runs")
HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "sharding_worker.py")


def launch(out, devices, mesh_shape, *extra):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  return subprocess.Popen([sys.executable, WORKER, str(out), str(devices), mesh_shape, *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, cwd=HERE)


def finish(*procs, timeout=240):
  outputs = []
  for proc in procs:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    outputs.append(out)
  return outputs


def params(path):
  data = np.load(path)
  return [data[k] for k in sorted(data.files, key=str) if k.startswith("param_")]


def max_diff(a, b):
  return max(float(np.max(np.abs(x - y))) for x, y in zip(params(a), params(b), strict=True))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """One single-device run and the multi-device runs, started together."""
  tmp = tmp_path_factory.mktemp("sharding")
  setups = {"single": (1, "auto"), "members": (8, "8,1"), "data": (8, "1,8"),
            "mixed": (8, "4,2"), "stream_single": (1, "auto", "--stream"),
            "stream_mixed": (8, "4,2", "--stream")}
  procs = {name: launch(tmp / f"{name}.npz", *setup) for name, setup in setups.items()}
  finish(*procs.values())
  return {name: tmp / f"{name}.npz" for name in setups}


@SHARED_RUNS
def test_member_sharded_run_equals_single_device(runs):
  assert int(np.load(runs["members"])["devices"]) == 8
  assert max_diff(runs["single"], runs["members"]) < 1e-5
  np.testing.assert_allclose(np.load(runs["members"])["metrics"],
                             np.load(runs["single"])["metrics"], atol=1e-5)


@SHARED_RUNS
@pytest.mark.parametrize("name", ["data", "mixed"])
def test_data_parallel_run_equals_single_device(runs, name):
  assert int(np.load(runs[name])["all_reduces"]) > 0  # gradients reduced over the data axis
  assert max_diff(runs["single"], runs[name]) < 1e-4
  np.testing.assert_allclose(np.load(runs[name])["metrics"],
                             np.load(runs["single"])["metrics"], atol=1e-4)


@SHARED_RUNS
def test_streamed_run_on_a_mesh_equals_the_single_device_stream(runs):
  """Host-fed batches split over the data axis (and members over the member axis)."""
  assert int(np.load(runs["stream_mixed"])["all_reduces"]) > 0
  assert max_diff(runs["stream_single"], runs["stream_mixed"]) < 1e-4
  np.testing.assert_allclose(np.load(runs["stream_mixed"])["metrics"],
                             np.load(runs["stream_single"])["metrics"], atol=1e-4)


def test_checkpoints_restore_across_device_counts(tmp_path):
  reference = launch(tmp_path / "ref.npz", 1, "auto", "--workdir", str(tmp_path / "ref"),
                     "--epochs", "2")
  first = [launch(tmp_path / "a1.npz", 8, "8,1", "--workdir", str(tmp_path / "a"),
                  "--epochs", "1"),
           launch(tmp_path / "b1.npz", 1, "auto", "--workdir", str(tmp_path / "b"),
                  "--epochs", "1")]
  finish(reference, *first)
  second = [launch(tmp_path / "a2.npz", 1, "auto", "--workdir", str(tmp_path / "a"),
                   "--epochs", "2"),  # written on 8 devices, resumed on 1
            launch(tmp_path / "b2.npz", 8, "4,2", "--workdir", str(tmp_path / "b"),
                   "--epochs", "2")]  # written on 1 device, resumed on 8
  for out in finish(*second):
    assert "resuming from the checkpoint at epoch 1" in out, out[-3000:]
    assert "unreadable" not in out
  assert max_diff(tmp_path / "ref.npz", tmp_path / "a2.npz") < 1e-5
  assert max_diff(tmp_path / "ref.npz", tmp_path / "b2.npz") < 1e-4


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@SHARED_RUNS
def test_two_processes_on_loopback_match_the_single_process_run(runs, tmp_path):
  port = str(free_port())
  procs = [launch(tmp_path / "dist.npz", 2, "auto", "--process", str(i), "--processes", "2",
                  "--port", port) for i in range(2)]
  finish(*procs)
  assert int(np.load(tmp_path / "dist.npz")["devices"]) == 4  # 2 processes x 2 devices
  assert max_diff(runs["single"], tmp_path / "dist.npz") < 1e-4


@SHARED_RUNS
def test_two_streaming_processes_match_the_single_process_stream(runs, tmp_path):
  """Mesh 1x4 over 2 processes: the data axis spans both, each feeds its devices' rows."""
  port = str(free_port())
  procs = [launch(tmp_path / "dist.npz", 2, "1,4", "--process", str(i), "--processes", "2",
                  "--port", port, "--stream") for i in range(2)]
  finish(*procs)
  assert max_diff(runs["stream_single"], tmp_path / "dist.npz") < 1e-4


def test_two_processes_through_the_cli_path_write_outputs_once(tmp_path):
  """train_and_evaluate on 2 processes: checkpoint shards from both, outputs from process 0."""
  port = str(free_port())
  single = launch(tmp_path / "one.npz", 1, "auto", "--workdir", str(tmp_path / "one"))
  procs = [launch(tmp_path / "two.npz", 2, "auto", "--process", str(i), "--processes", "2",
                  "--port", port, "--workdir", str(tmp_path / "two")) for i in range(2)]
  finish(single, *procs)
  np.testing.assert_allclose(np.load(tmp_path / "two.npz")["metrics"],
                             np.load(tmp_path / "one.npz")["metrics"], atol=1e-4)
  lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == 2 * 8  # written once (by process 0), not once per process
  summary = (tmp_path / "two" / "summary.json").read_text()
  assert '"processes": 2' in summary and '"devices": 4' in summary


def test_a_signal_to_one_process_stops_every_process_and_the_run_resumes(tmp_path):
  """SIGTERM to process 1 only: both stop at the same evaluation point with a checkpoint (a
  process stopping alone would leave the other waiting in a collective), and rerunning both
  continues to the numbers of an uninterrupted run."""
  workdir = tmp_path / "two"
  single = launch(tmp_path / "one.npz", 1, "auto", "--workdir", str(tmp_path / "one"),
                  "--epochs", "10")

  def pair(epochs):
    port = str(free_port())
    return [launch(tmp_path / "two.npz", 2, "auto", "--process", str(i), "--processes", "2",
                   "--port", port, "--workdir", str(workdir), "--epochs", str(epochs))
            for i in range(2)]

  procs = pair(epochs=400)
  metrics = workdir / "metrics.jsonl"
  deadline = time.time() + 200
  while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 8):  # epoch 1
    assert time.time() < deadline and procs[1].poll() is None, "no epoch was written"
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGTERM)
  outs = []
  for proc in procs:
    out, _ = proc.communicate(timeout=120)  # a process left in a collective: a timeout
    outs.append(out)
    assert proc.returncode == 3, out[-3000:]  # stopped by the signal, not finished or crashed
  assert "stopped by another process" in outs[0] and "stopped by SIGTERM" in outs[1]
  stopped_at = len(metrics.read_text().splitlines()) // 8
  assert 1 <= stopped_at < 10, stopped_at
  finish(*pair(epochs=10), single)  # resumed (a run may be asked to go on for less)
  lines = metrics.read_text().splitlines()
  assert len(lines) == 10 * 8  # every evaluation point once
  sessions = json.loads((workdir / "summary.json").read_text())["run"]["sessions"]
  assert len(sessions) == 2 and sessions[0][0] == 0 and sessions[1][1] == 10 * 4, sessions
  np.testing.assert_allclose(np.load(tmp_path / "two.npz")["metrics"],
                             np.load(tmp_path / "one.npz")["metrics"], atol=1e-4)


@pytest.mark.parametrize("text, members, batch, message", [
    ("3,2", 8, 16, "3x2 = 6 devices, but 8 are present; allowed: M,D with M*D = 8"),
    ("8,1", 6, 16, "6 members cannot be split over 8 devices on the member axis; allowed "
                   "member sizes: 1, 2"),
    ("1,8", 8, 12, "batch_size 12 cannot be split over 8 devices"),
    ("two", 8, 16, "is not 'auto' or 'MEMBER,DATA'"),
])
def test_invalid_mesh_shapes_are_one_line_errors(text, members, batch, message):
  with pytest.raises(UserError, match="mesh_shape: ") as err:
    sharding.mesh_shape(text, members, batch, num_devices=8)
  assert message in str(err.value) and "\n" not in str(err.value)


def test_auto_mesh_puts_members_first():
  assert sharding.mesh_shape("auto", 8, 128, num_devices=8) == (8, 1)
  assert sharding.mesh_shape("auto", 6, 128, num_devices=8) == (2, 4)
  assert sharding.mesh_shape("auto", 3, 128, num_devices=8) == (1, 8)
  assert sharding.mesh_shape("auto", 8, 128, num_devices=8, spread_members=False) == (1, 8)
  with pytest.raises(UserError, match="only member_strategy=vmap can do"):
    sharding.mesh_shape("8,1", 8, 128, num_devices=8, spread_members=False)
