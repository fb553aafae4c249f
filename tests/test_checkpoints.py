"""Checkpoints: exact resume after SIGKILL, clean stop on SIGTERM, fallback, refusal, restore."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from helpers import tiny_config

from rethinking_jax.base.errors import UserError
from rethinking_jax.engine import assemble, checkpoints
from rethinking_jax.run import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = {"wall_time", "train_seconds", "eval_seconds", "compile_seconds", "wall_seconds",
          "examples_per_second", "sessions"}  # how a run ran, not what it computed
LONG_RUN = ["--config=configs/quickstart.py", "--config.progress=False",
            "--config.randomizations=random_labels,true_labels", "--config.num_epochs=300",
            "--config.eval_every_epochs=2", "--config.checkpoint_every_epochs=8",
            "--config.stop_when_memorized=False"]


class Run:
  """A CLI run in a subprocess; its output goes to a file (a full pipe would block it)."""

  def __init__(self, workdir):
    self.log = workdir.parent / f"{workdir.name}.log"
    self._out = open(self.log, "a")
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "rethinking_jax.main", f"--workdir={workdir}", *LONG_RUN],
        cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT)

  def poll(self):
    return self.proc.poll()

  def send_signal(self, sig):
    self.proc.send_signal(sig)

  def communicate(self, timeout):
    self.proc.wait(timeout=timeout)
    self._out.close()
    return "", self.log.read_text()

  @property
  def returncode(self):
    return self.proc.returncode


def start(workdir):
  return Run(workdir)


def wait_for_epoch(workdir, epoch, proc, timeout=120):
  path = workdir / "metrics.jsonl"
  deadline = time.time() + timeout
  while time.time() < deadline:
    assert proc.poll() is None, proc.communicate(60)[1][-2000:]
    if path.exists():
      lines = path.read_text().splitlines()
      if lines and json.loads(lines[-1])["epoch"] >= epoch:
        return
    time.sleep(0.05)
  raise TimeoutError(f"epoch {epoch} not reached")


def without_timing(obj):
  if isinstance(obj, dict):
    return {k: without_timing(v) for k, v in obj.items() if k not in TIMING}
  if isinstance(obj, list):
    return [without_timing(v) for v in obj]
  return obj


def outputs(workdir):
  metrics = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
  summary = json.loads((workdir / "summary.json").read_text())
  summary["run"].pop("name")
  params = [checkpoints.restore_member(str(workdir), m)["params"] for m in range(2)]
  return without_timing(metrics), without_timing(summary), params


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("uninterrupted")
  proc = start(workdir)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-2000:]
  return outputs(workdir)


def assert_same_run(a, b):
  metrics_a, summary_a, params_a = a
  metrics_b, summary_b, params_b = b
  assert metrics_a == metrics_b  # no duplicated, missing or different line
  assert summary_a == summary_b
  for pa, pb in zip(params_a, params_b, strict=True):
    for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb), strict=True):
      np.testing.assert_array_equal(x, y)  # bit for bit


@pytest.mark.slow
@pytest.mark.xdist_group("uninterrupted")
def test_sigkill_then_rerun_equals_uninterrupted_run(tmp_path, uninterrupted):
  proc = start(tmp_path)
  wait_for_epoch(tmp_path, 100, proc)
  proc.send_signal(signal.SIGKILL)
  proc.communicate(timeout=60)
  lines_at_kill = len((tmp_path / "metrics.jsonl").read_text().splitlines())
  assert 0 < lines_at_kill < len(uninterrupted[0])
  rerun = start(tmp_path)
  _, err = rerun.communicate(timeout=300)
  assert rerun.returncode == 0, err[-2000:]
  assert "resuming from the checkpoint at epoch" in err
  assert_same_run(outputs(tmp_path), uninterrupted)
  sessions = json.loads((tmp_path / "summary.json").read_text())["run"]["sessions"]
  saved = (json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[lines_at_kill - 1])
           ["step"])
  # The final state's lineage: trained from 0 to a checkpoint, then resumed from it (not
  # started again), the checkpoint at or before the last step the killed run evaluated.
  assert len(sessions) == 2 and sessions[0][0] == 0 and sessions[1][0] == sessions[0][1]
  assert 0 < sessions[1][0] <= saved


@pytest.mark.slow
@pytest.mark.xdist_group("uninterrupted")
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, uninterrupted):
  proc = start(tmp_path)
  wait_for_epoch(tmp_path, 60, proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 3, err[-2000:]
  assert "interrupted: stopped by SIGTERM at epoch" in err and "rerun the same command" in err
  assert re.search(r"SIGTERM: stopping at the next evaluation point, at step \d+, in about "
                   r"\d+ s, with a checkpoint", err), err[-2000:]  # says how long it waits
  last_step = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["step"]
  saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert saved[-1] == last_step  # checkpointed exactly where it stopped (named by step)
  assert not (tmp_path / "summary.json").exists()
  rerun = start(tmp_path)
  _, err = rerun.communicate(timeout=300)
  assert rerun.returncode == 0, err[-2000:]
  assert_same_run(outputs(tmp_path), uninterrupted)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_a_closed_terminal_stops_a_run_as_sigterm_does(sig):
  """SIGHUP (a closed terminal, a dropped ssh session) must not kill the run without its
  checkpoint: the handler takes it as SIGTERM (a subprocess: unhandled, it would end pytest)."""
  code = ("import os, signal, time\nfrom rethinking_jax.base import stop_signals\n"
          "with stop_signals.StopSignals(lambda: 'at the next evaluation point') as stop:\n"
          f"  os.kill(os.getpid(), signal.{sig})\n  time.sleep(0.1)\n"
          "print('received', stop.received)\n")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0 and f"received {sig}" in proc.stdout, proc.stderr[-2000:]
  assert f"{sig}: stopping at the next evaluation point" in proc.stderr


def small(**overrides):
  return tiny_config(**{"num_epochs": 8, "checkpoint_every_epochs": 2, "checkpoints_to_keep": 3,
                        "randomizations": "random_labels,true_labels", **overrides})


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
  reference = train.train_and_evaluate(small(), str(tmp_path / "ref"))
  workdir = tmp_path / "run"
  train.train_and_evaluate(small(), str(workdir))
  saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  assert saved == [16, 24, 32]  # steps: epochs 4, 6, 8 of 4 steps
  for path in (workdir / "checkpoints" / "32").rglob("*"):
    if path.is_file():
      path.write_bytes(b"garbage")
  (workdir / "summary.json").unlink()
  again = train.train_and_evaluate(small(), str(workdir))
  assert without_timing(again["members"]) == without_timing(reference["members"])
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == 8 * 2  # epochs 7-8 were retrained, not appended twice
  assert again["run"]["sessions"] == [[0, 24], [24, 32]]  # from epoch 6: only 7-8 retrained


def test_all_checkpoints_corrupt_starts_fresh(tmp_path):
  train.train_and_evaluate(small(num_epochs=2), str(tmp_path))
  for path in (tmp_path / "checkpoints").rglob("*"):
    if path.is_file():
      path.write_bytes(b"garbage")
  summary = train.train_and_evaluate(small(num_epochs=2), str(tmp_path))
  assert summary["run"]["epochs"] == 2


def _rewrite_checkpoint(workdir, step, state_format):
  """Rewrites the checkpoint at `step` as one written in TrainState layout `state_format`
  (1: before optax.sgd, the meta without a state_format field; 2: before loss_sum)."""
  import orbax.checkpoint as ocp

  run = assemble.prepare(small())
  checkpointer = checkpoints.RunCheckpointer(str(workdir))
  state, meta = checkpointer.restore_at(step, run.programs.abstract_state(run.members))
  checkpointer.close()
  meta = dict(meta)
  if state_format in (1, 2):
    state = checkpoints.legacy_state(state, state_format)
  if state_format == 1:
    meta.pop("state_format")
  else:
    meta["state_format"] = state_format
  meta["fingerprint"] = checkpoints.fingerprint(state)
  directory = workdir / "checkpoints"
  with ocp.CheckpointManager(str(directory)) as manager:
    manager.delete(step)
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                               meta=ocp.args.JsonSave(meta)), force=True)
    manager.wait_until_finished()


@pytest.mark.parametrize("state_format", [1, 2])
def test_a_checkpoint_of_the_old_state_layout_resumes_to_the_same_numbers(tmp_path,
                                                                          state_format):
  reference = train.train_and_evaluate(small(), str(tmp_path / "ref"))
  workdir = tmp_path / "run"
  train.train_and_evaluate(small(num_epochs=6), str(workdir))  # saved at epochs 2, 4, 6
  _rewrite_checkpoint(workdir, 24, state_format)  # as saved before optax.sgd / loss_sum
  resumed = train.train_and_evaluate(small(), str(workdir))
  assert resumed["run"]["sessions"] == [[0, 24], [24, 32]]  # upgraded, not retrained
  assert without_timing(resumed["members"]) == without_timing(reference["members"])


def test_a_checkpoint_of_a_newer_layout_is_refused_and_kept(tmp_path):
  train.train_and_evaluate(small(num_epochs=2), str(tmp_path))
  _rewrite_checkpoint(tmp_path, 8, state_format=99)
  with pytest.raises(UserError, match="state format 99"):
    train.train_and_evaluate(small(num_epochs=4), str(tmp_path))
  assert (tmp_path / "checkpoints" / "8").is_dir()  # not taken for a corrupt one


def test_a_different_config_is_refused_and_restart_starts_fresh(tmp_path):
  train.train_and_evaluate(small(num_epochs=2), str(tmp_path))
  before = (tmp_path / "metrics.jsonl").read_text()
  with pytest.raises(UserError) as err:
    train.train_and_evaluate(small(num_epochs=2, learning_rate=0.07), str(tmp_path))
  msg = str(err.value)
  assert "learning_rate: 0.05 in the workdir, 0.07 now" in msg and "restart=True" in msg
  assert (tmp_path / "metrics.jsonl").read_text() == before  # untouched
  # Training longer is a continuation, not a different run.
  longer = train.train_and_evaluate(small(num_epochs=4), str(tmp_path))
  assert longer["run"]["epochs"] == 4
  fresh = train.train_and_evaluate(small(num_epochs=2, learning_rate=0.07, restart=True),
                                   str(tmp_path))
  assert fresh["run"]["epochs"] == 2
  assert json.loads((tmp_path / "config.json").read_text())["learning_rate"] == 0.07


def test_a_resumed_run_may_be_evaluated_more_often_and_trains_the_same(tmp_path):
  """The evaluation cadence may change on resume (base_config.resume_may_change): the
  resumed part is evaluated on the new grid, and the training is the uninterrupted run's."""
  train.train_and_evaluate(small(num_epochs=4), str(tmp_path / "ref"))
  workdir = tmp_path / "run"
  train.train_and_evaluate(small(num_epochs=2), str(workdir))
  again = train.train_and_evaluate(small(num_epochs=4, eval_every_steps=2), str(workdir))
  assert again["run"]["sessions"] == [[0, 8], [8, 16]]
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert sorted({r["step"] for r in records}) == [4, 8, 10, 12, 14, 16]
  ref = [json.loads(line) for line in (tmp_path / "ref" / "metrics.jsonl").read_text()
         .splitlines()]
  at = lambda rs, step: [{k: v for k, v in r.items() if k != "minibatch_loss"}
                         for r in without_timing(rs) if r["step"] == step]
  for step in (12, 16):  # the points both grids share: the same numbers (but for the
    # minibatch loss, a mean over the interval since the point before)
    assert at(records, step) == at(ref, step)
  assert json.loads((workdir / "config.json").read_text())["eval_every_steps"] == 2


def test_restore_member(tmp_path):
  config = small(num_epochs=2, model="inception_small", learning_rate=0.01)
  train.train_and_evaluate(config, str(tmp_path))
  run = assemble.prepare(config)
  member = checkpoints.restore_member(str(tmp_path), 1)
  assert member["label"] == "true_labels" and member["epoch"] == 2
  x = np.zeros((2, *member["input_shape"]), np.float32)
  logits = member["model"].apply({"params": member["params"],
                                  "batch_stats": member["batch_stats"]}, x)
  assert logits.shape == (2, run.dataset.num_classes)
  with pytest.raises(UserError, match="member: 5 is out of range; allowed: 0..1"):
    checkpoints.restore_member(str(tmp_path), 5)
  with pytest.raises(UserError, match="no checkpoints"):
    checkpoints.restore_member(str(tmp_path / "nothing"), 0)
