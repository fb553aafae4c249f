"""The command line: the quickstart demo end to end, its outputs' schema, one-line errors."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = [sys.executable, "-m", "rethinking_jax.main"]
RECORD_KEYS = {"step", "epoch", "member", "label", "train_loss", "train_acc", "train_top5",
               "test_loss", "test_acc", "test_top5", "train_acc_clean", "train_acc_corrupted",
               "train_examples", "minibatch_loss", "learning_rate", "wall_time"}
MEMBER_KEYS = {"member", "label", "randomization", "corruption_p", "seed", "learning_rate",
               "weight_decay", "train_loss", "train_acc", "train_top5", "test_loss", "test_acc",
               "test_top5",
               "best_test_acc", "steps_to_memorize", "epochs_to_memorize", "diverged"}
RUN_KEYS = {"name", "dataset", "num_train", "num_test", "model", "input_pipeline",
            "train_eval_examples", "member_strategy", "layer_impl", "conv_impl",
            "batch_size", "epochs", "steps", "sessions", "stop", "stop_reason", "memorized",
            "diverged",
            "corrupt_test_labels", "metrics_lines_lost", "train_seconds", "eval_seconds",
            "compile_seconds", "wall_seconds", "examples_per_second", "device", "platform", "cpu",
            "cpu_isa",
            "devices", "processes", "mesh"}


def uses_quickstart(test):
  """The quickstart (a real run, in a subprocess) is the slow tier; the tests that share it
  run on one xdist worker so that it trains once."""
  return pytest.mark.slow(pytest.mark.xdist_group("quickstart")(test))


def cli(*args, **kwargs):
  return subprocess.Popen([*CLI, *args], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("quickstart")
  env = {k: v for k, v in os.environ.items() if k != "JAX_DISABLE_MOST_OPTIMIZATIONS"}
  proc = cli("--config=configs/quickstart.py", f"--workdir={workdir}",
             "--config.progress=False", env=env)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-3000:]
  return workdir, out


@uses_quickstart
def test_quickstart_shows_the_papers_finding(quickstart):
  workdir, out = quickstart
  assert "report:" in out
  summary = json.loads((workdir / "summary.json").read_text())
  members = {m["randomization"]: m for m in summary["members"]}
  assert set(members) == {"true_labels", "corrupt_labels", "random_labels", "shuffled_pixels",
                          "random_pixels", "gaussian"}
  for m in members.values():  # every member fits its training set exactly
    assert m["train_acc"] == 1.0 and m["steps_to_memorize"] is not None and not m["diverged"]
  assert members["true_labels"]["test_acc"] > 0.9
  assert members["shuffled_pixels"]["test_acc"] > 0.9  # an MLP does not care about pixel order
  assert 0.3 < members["corrupt_labels"]["test_acc"] < 0.9
  for kind in ("random_labels", "random_pixels", "gaussian"):
    assert members[kind]["test_acc"] < 0.2  # chance is 0.1
  assert (members["random_labels"]["steps_to_memorize"]
          > members["true_labels"]["steps_to_memorize"])


@uses_quickstart
def test_report_command_rewrites_a_runs_report_and_curves(quickstart, tmp_path):
  copy = tmp_path / "run"
  shutil.copytree(quickstart[0], copy, ignore=shutil.ignore_patterns("checkpoints"))
  (copy / "report.md").unlink()
  (copy / "curves.png").unlink()
  proc = subprocess.run([sys.executable, "-m", "rethinking_jax.report", f"--workdir={copy}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stderr.startswith(f"report: rendering {copy} (")  # not silent while it works
  assert (copy / "report.md").read_text() == (quickstart[0] / "report.md").read_text()
  assert (copy / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@uses_quickstart
def test_output_schema(quickstart):
  workdir, _ = quickstart
  assert {p.name for p in workdir.iterdir()} == {"config.json", "metrics.jsonl", "summary.json",
                                                 "report.md", "curves.png", "memorization.png",
                                                 "checkpoints", ".rethinking_jax.lock"}
  config = json.loads((workdir / "config.json").read_text())
  assert config["dataset"] == "digits" and config["progress"] is False
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert all(set(r) == RECORD_KEYS for r in records)
  assert len(records) % 6 == 0 and {r["member"] for r in records} == set(range(6))
  steps = [r["step"] for r in records]
  assert steps == sorted(steps)
  summary = json.loads((workdir / "summary.json").read_text())
  assert set(summary["run"]) == RUN_KEYS
  assert all(set(m) == MEMBER_KEYS for m in summary["members"])
  assert summary["run"]["steps"] == records[-1]["step"]
  report = (workdir / "report.md").read_text()
  members_table, dynamics = report.split("## Memorization dynamics")
  assert members_table.count("\n| ") == 1 + 6  # header + one row per member
  assert dynamics.count("\n| ") == 1 + 2  # header + the two members with corrupted labels
  assert (workdir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


BAD = {
    "--config.model=resnet": "model: unknown value 'resnet'; allowed: alexnet_small",
    "--config.dataset=svhn": "dataset: unknown value 'svhn'; allowed: cifar10",
    "--config.randomizations=noise": "randomizations: unknown value 'noise'; allowed:",
    "--config.randomizations=corrupt_labels:1.5": "p=1.5",
    "--config.member_strategy=pmap":
        "member_strategy: unknown value 'pmap'; allowed: auto, hybrid, map",
    "--config.batch_size=0": "batch_size: 0 must be a positive integer",
    "--config.batch_size=5000": "batch_size: 5000 is larger than the training set",
    "--config.learning_rate=-0.1": "learning_rate: -0.1 must be > 0",
    "--config.learning_rates=0.1,0": "learning_rates: 0.0 must be > 0",
    "--config.learning_rate=inf": "learning_rate: inf is not a finite number",
    "--config.weight_decays=0,-inf": "weight_decays: '-inf' is not a finite number",
    "--config.no_such_field=1": "config: unknown field 'no_such_field'; every field and its "
                               "default: configs/default.py",
    "--config.batch_size=abc": "config.batch_size",
}


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
  procs = {}
  for flag in BAD:
    procs[flag] = (tmp_path / flag.strip("-").replace("=", "_").replace(",", "_"))
  running = {flag: cli("--config=configs/quickstart.py", f"--workdir={workdir}", flag)
             for flag, workdir in procs.items()}
  long_name = cli("--config=configs/quickstart.py", f"--workdir={tmp_path / ('w' * 300)}")
  missing = cli("--config=configs/no_such_config.py", f"--workdir={tmp_path / 'missing'}")
  for flag, proc in [*running.items(), ("missing config", missing), ("long name", long_name)]:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (flag, err[-2000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (flag, err[-2000:])
    assert "Traceback" not in err
    if flag in BAD:
      assert BAD[flag] in lines[0], (flag, lines[0])
      assert not procs[flag].exists(), flag
    if flag == "long name":
      assert "workdir: the folder name wwww" in lines[0] and "at most 255 bytes" in lines[0]
  assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("named", ["path", "shipped"])
def test_a_paper_config_loads_from_outside_the_repository_and_through_the_entry_point(
    tmp_path, named):
  """configs/table1.py imports its package; the run is refused by validation (batch 0), which
  happens only after the file loaded. The console command where the install created it. By
  name (`table1.py`) from another directory: the config the package ships."""
  config = ("--config=table1.py:smoke,mlp_1x512" if named == "shipped" else
            f"--config={os.path.join(ROOT, 'configs', 'table1.py')}:smoke,mlp_1x512")
  commands = [CLI]
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no repo on the path
  entry = os.path.join(os.path.dirname(sys.executable), "rethinking-jax")
  if os.path.exists(entry):
    commands.append([entry])
  for command in commands:
    proc = subprocess.run([*command, config, f"--workdir={tmp_path / 'w'}",
                           "--config.batch_size=0"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].endswith("batch_size: 0 must be a positive "
                                                         "integer"), \
        proc.stderr[-2000:]


def test_a_config_named_but_absent_here_is_the_one_the_package_ships(tmp_path, monkeypatch):
  from rethinking_jax import configs

  monkeypatch.chdir(tmp_path)
  shipped = os.path.join(ROOT, "rethinking_jax", "configs", "table1.py")
  assert configs.shipped("table1.py") == configs.shipped("configs/table1.py") == shipped
  assert configs.shipped("elsewhere/table1.py") is None  # a path of one's own: as given
  assert configs.shipped("table9.py") is None            # a typo stays an error
  (tmp_path / "table1.py").write_text("def get_config(arg=None): ...\n")
  assert configs.shipped("table1.py") is None            # a file here wins


def test_one_console_command_with_train_report_and_measures(tmp_path):
  """`rethinking-jax [train|report|measures]`: each subcommand is its program (its one-line
  errors), no subcommand is train, an unknown one is one line naming the three."""
  dispatcher = [sys.executable, "-m", "rethinking_jax.cli"]

  def last_line(*args):
    proc = subprocess.run([*dispatcher, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stderr.strip().splitlines()[-1]

  assert last_line("bogus") == (2, "error: command 'bogus': allowed: train, report, measures "
                                   "(without one: train)")
  assert last_line("report", f"--workdir={tmp_path}") == (
      2, f"error: workdir: no config.json in {tmp_path}; is it a run's workdir?")
  assert last_line("measures") == (2, "error: --workdir=DIR is required (a trained run's "
                                      "workdir)")
  for train in (["train"], []):
    code, line = last_line(*train, "--config=table1.py:smoke,mlp_1x512", "--workdir=w",
                           "--config.batch_size=0")
    assert code == 2 and line.endswith("batch_size: 0 must be a positive integer"), line


def test_tensorboard_scalars_are_the_metrics_of_every_member(tmp_path):
  pytest.importorskip("tensorboardX")  # in the test extra
  from helpers import tiny_config
  from tensorboard_events import read_scalars

  from rethinking_jax.reports import writers
  from rethinking_jax.run import train

  config = tiny_config(randomizations="random_labels,corrupt_labels:0.5", tensorboard=True)
  train.train_and_evaluate(config, str(tmp_path))
  scalars = read_scalars(tmp_path / "tensorboard")
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert len(records) == 2 * 2  # two evaluation points, two members
  for r in records:
    for key in ("train_acc", "test_loss", "learning_rate", "train_acc_corrupted"):
      assert scalars[writers.tag(key, r["label"])][r["step"]] == pytest.approx(r[key],
                                                                              rel=1e-6)


def test_tensorboard_without_tensorboardx_is_one_line(monkeypatch):
  import importlib.util

  from helpers import tiny_config

  from rethinking_jax.base.errors import UserError
  from rethinking_jax.run import configuration

  find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "tensorboardX" else find_spec(name, *a))
  with pytest.raises(UserError, match=r"^tensorboard: True needs tensorboardX .*allowed "
                                      "without it: False$"):
    configuration.validate(tiny_config(tensorboard=True))
  configuration.validate(tiny_config(tensorboard=False))


def _wandb_history(workdir) -> list[dict]:
  """The logged rows of every offline W&B run under `workdir` (the .wandb file: LevelDB-log
  framing -- 32 KiB blocks of chunks with a 7-byte header -- of wandb Record protobufs)."""
  import glob
  import struct

  from wandb.proto import wandb_internal_pb2

  rows = []
  for path in sorted(glob.glob(os.path.join(str(workdir), "wandb", "offline-run-*", "*.wandb"))):
    with open(path, "rb") as f:
      data = f.read()
    pos, chunks, record = 7, [], b""  # 7: the file's own header
    while pos + 7 <= len(data):
      if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
        pos += 32768 - pos % 32768
        continue
      _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
      if kind == 0:
        break
      record = data[pos + 7:pos + 7 + length] if kind in (1, 2) else record + data[
          pos + 7:pos + 7 + length]
      pos += 7 + length
      if kind in (1, 4):  # a full record, or the last chunk of one
        chunks.append(record)
    for raw in chunks:
      message = wandb_internal_pb2.Record.FromString(raw)
      if message.WhichOneof("record_type") == "history":
        rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                     for item in message.history.item})
  return rows


def test_wandb_offline_run_holds_the_metrics_of_every_member_and_resumes_as_one(tmp_path,
                                                                                 monkeypatch):
  pytest.importorskip("wandb")  # in the test extra
  from helpers import tiny_config

  from rethinking_jax.reports import writers
  from rethinking_jax.run import train

  monkeypatch.setenv("WANDB_SILENT", "true")
  config = tiny_config(randomizations="random_labels,corrupt_labels:0.5", num_epochs=1,
                       wandb_project="rethinking-jax-test")
  train.train_and_evaluate(config, str(tmp_path))
  run_id = (tmp_path / "wandb" / "run_id").read_text().strip()
  config.unlock()
  config.num_epochs = 2  # resumed: the same W&B run goes on
  train.train_and_evaluate(config, str(tmp_path))
  assert (tmp_path / "wandb" / "run_id").read_text().strip() == run_id
  assert all(path.name.endswith(run_id) for path in (tmp_path / "wandb").glob("offline-run-*"))
  rows = {row["_step"]: row for row in _wandb_history(tmp_path)}
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert sorted(rows) == sorted({r["step"] for r in records}) and len(rows) == 2
  for r in records:
    for key in ("train_acc", "test_loss", "learning_rate", "train_acc_corrupted"):
      assert rows[r["step"]][writers.tag(key, r["label"])] == pytest.approx(r[key], rel=1e-6)


def test_a_writer_of_ones_own_gets_every_evaluation_points_scalars(tmp_path):
  from helpers import tiny_config

  from rethinking_jax.reports import writers
  from rethinking_jax.run import train

  class Collecting:  # a MetricWriter (clu's interface), nothing else
    def __init__(self):
      self.scalars, self.hparams, self.closed = {}, None, False

    def write_scalars(self, step, scalars):
      self.scalars[step] = dict(scalars)

    def write_hparams(self, hparams):
      self.hparams = hparams

    def flush(self):
      pass

    def close(self):
      self.closed = True

  own = Collecting()
  train.train_and_evaluate(tiny_config(), str(tmp_path), metric_writers=[own])
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert own.closed and own.hparams["model"] == json.loads(
      (tmp_path / "config.json").read_text())["model"]
  assert own.scalars == {step: writers.scalars_of([r for r in records if r["step"] == step])
                         for step in {r["step"] for r in records}}
  assert all(own.scalars[r["step"]][writers.tag("train_loss", r["label"])] == r["train_loss"]
             for r in records)


@pytest.mark.parametrize("fields, message", [
    ({"wandb_project": "p", "wandb_mode": "cloud"},
     r"^wandb_mode: 'cloud'; allowed: offline, online$"),
    ({"wandb_project": "my project"}, r"^wandb_project: 'my project'; allowed: 1-128 "),
    ({"wandb_project": "p", "wandb_mode": "online"},
     r"^wandb_mode: 'online' needs a W&B key \(WANDB_API_KEY or `wandb login`\); allowed "
     r"without one: offline"),
])
def test_wandb_fields_that_cannot_work_are_one_line(fields, message, monkeypatch, tmp_path):
  from helpers import tiny_config

  from rethinking_jax.base.errors import UserError
  from rethinking_jax.run import configuration

  monkeypatch.delenv("WANDB_API_KEY", raising=False)
  monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
  monkeypatch.setenv("NETRC", str(tmp_path / "none"))
  with pytest.raises(UserError, match=message):
    configuration.validate(tiny_config(**fields))


def test_wandb_without_the_package_is_one_line(monkeypatch):
  import importlib.util

  from helpers import tiny_config

  from rethinking_jax.base.errors import UserError
  from rethinking_jax.run import configuration

  find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "wandb" else find_spec(name, *a))
  with pytest.raises(UserError, match=r"^wandb_project: a W&B run needs wandb \(pip install "
                                      r"-e '\.\[wandb\]'\); allowed without it: \"\" "):
    configuration.validate(tiny_config(wandb_project="p"))
  configuration.validate(tiny_config())
