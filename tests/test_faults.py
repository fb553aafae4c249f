"""Faults and hostile input (issue #16): each case works, or stops with one line and exit 2
before anything is written; nothing is lost, overwritten or misreported."""

import hashlib
import importlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tarfile
import textwrap
import time

import numpy as np
import pytest
from helpers import tiny_config
from PIL import Image

from rethinking_jax import data, report
from rethinking_jax.base import workdir as workdir_lib
from rethinking_jax.base.errors import UserError
from rethinking_jax.data import image_folder, inputs
from rethinking_jax.engine import assemble, checkpoints, loop
from rethinking_jax.run import configuration, suite, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = [sys.executable, "-m", "rethinking_jax.main"]
# The command line as a terminal starts it: SIGINT at its default, so that Python turns it
# into KeyboardInterrupt even where this test process was started with SIGINT ignored (a
# shell's background job, nohup), whose children would inherit that (and then hang).
TERMINAL_CLI = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, "
                "signal.SIG_DFL); os.execv(sys.executable, [sys.executable, '-m', "
                "'rethinking_jax.main', *sys.argv[1:]])"]
QUICK = ["--config=configs/quickstart.py", "--config.progress=False"]
TIMING = {"wall_time", "train_seconds", "eval_seconds", "compile_seconds", "wall_seconds",
          "examples_per_second", "sessions"}


def cli(*args, **kwargs):
  return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                        **kwargs)


def with_file_size_limit(limit_bytes: int, command: list) -> list:
  """`command` under RLIMIT_FSIZE (`ulimit -f`), set by a fresh interpreter that then execs
  it: no preexec_fn, which forks this multithreaded (JAX) process."""
  setup = ("import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, "
           f"({limit_bytes}, {limit_bytes})); os.execv(sys.argv[1], sys.argv[1:])")
  return [sys.executable, "-c", setup, *command]


def snapshot(path) -> dict:
  """{relative path: sha256} of every file under `path` ({} when it does not exist)."""
  out = {}
  for root, _, names in os.walk(path):
    for name in names:
      full = os.path.join(root, name)
      with open(full, "rb") as f:
        out[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
  return out


def without_timing(obj):
  if isinstance(obj, dict):
    return {k: without_timing(v) for k, v in obj.items() if k not in TIMING}
  if isinstance(obj, list):
    return [without_timing(v) for v in obj]
  return obj


def one_line_error(proc) -> str:
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
  lines = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
  assert len(lines) == 1, proc.stderr[-2000:]
  return lines[0]


def small(**overrides):
  return tiny_config(**{"randomizations": "random_labels,true_labels", "num_epochs": 4,
                        "checkpoint_every_epochs": 2, "checkpoints_to_keep": 3, **overrides})


# -- Wrong results reported as right ----------------------------------------------------------

def test_each_stop_reason_is_true_to_every_member():
  m = loop.MemberStatus
  assert loop.stop_reason([m(steps_to_memorize=5), m(steps_to_memorize=7)], 3, 9) == (
      "memorized", "every member memorized its training set")
  code, text = loop.stop_reason([m(steps_to_memorize=5), m(diverged=True)], 3, 9)
  assert code == "memorized"
  assert text == ("every member that did not diverge memorized its training set; "
                  "1 of 2 diverged")
  code, text = loop.stop_reason([m(diverged=True, steps_to_memorize=2), m(diverged=True)], 1, 9)
  assert code == "diverged" and text.startswith("every member diverged")
  assert "none memorized" in text
  code, text = loop.stop_reason([m(steps_to_memorize=5), m(), m(diverged=True)], 9, 9)
  assert (code, text) == ("num_epochs", "num_epochs=9 reached with 1 of 3 members memorized; "
                          "1 of 3 diverged")


def test_a_run_whose_members_all_diverge_says_so_first_and_exits_4(tmp_path):
  proc = cli(*QUICK, f"--workdir={tmp_path}", "--config.learning_rate=1e6",
             "--config.randomizations=true_labels,random_labels", "--config.num_epochs=20")
  assert proc.returncode == 4, proc.stderr[-2000:]
  assert proc.stdout.startswith("done: every member diverged"), proc.stdout
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["run"]["stop"] == "diverged" and summary["run"]["diverged"] == 2
  assert summary["run"]["memorized"] == 0 and summary["run"]["epochs"] < 20  # stopped early
  assert "every member diverged" in (tmp_path / "report.md").read_text()


def test_a_checkpoint_whose_bytes_changed_is_skipped_for_the_previous_one(tmp_path, caplog):
  reference = train.train_and_evaluate(small(), str(tmp_path / "ref"))
  workdir = tmp_path / "run"
  train.train_and_evaluate(small(), str(workdir))
  files = [p for p in (workdir / "checkpoints" / "16").rglob("*") if p.is_file()]  # epoch 4
  biggest = max(files, key=lambda p: p.stat().st_size)
  blob = bytearray(biggest.read_bytes())
  start = len(blob) // 2 - min(2048, len(blob) // 4)
  for i in range(start, start + min(4096, len(blob) // 2)):  # 4 KB in the middle
    blob[i] ^= 0x5A
  biggest.write_bytes(bytes(blob))
  (workdir / "summary.json").unlink()
  with caplog.at_level(logging.WARNING):
    again = train.train_and_evaluate(small(), str(workdir))
  assert "checkpoint at step 16" in caplog.text and "trying an older one" in caplog.text
  assert without_timing(again["members"]) == without_timing(reference["members"])
  assert again["run"]["sessions"] == [[0, 8], [8, 16]]  # resumed from epoch 2, not 4
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(x)["epoch"] for x in lines] == [e for e in (1, 2, 3, 4) for _ in range(2)]


def test_the_fingerprint_sees_any_changed_word_and_ignores_the_layout():
  state = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "step": np.int32(7),
           "ok": np.array([True, False])}
  same = checkpoints.fingerprint(state)
  assert checkpoints.fingerprint({k: state[k] for k in ("ok", "step", "w")}) == same
  changed = {**state, "w": state["w"].copy()}
  changed["w"][2, 3] = np.nextafter(changed["w"][2, 3], np.float32(1e9))  # one bit
  assert checkpoints.fingerprint(changed) != same


# -- Results lost or overwritten --------------------------------------------------------------

def suite_config(name, arg, **overrides):
  config = importlib.import_module(f"rethinking_jax.configs.{name}").get_config(arg)
  config.progress = False
  for key, value in overrides.items():
    config[key] = value
  return config


def test_a_refused_suite_command_writes_nothing(tmp_path, caplog):
  with caplog.at_level(logging.INFO):
    suite.run_suite(suite_config("table1", "smoke,mlp_1x512"), str(tmp_path))
  assert "suite table1: run 1 of 1, mlp_1x512_center" in caplog.text
  before = snapshot(tmp_path)
  refused = [
      suite_config("table1", "mlp_1x512", data_dir=str(tmp_path / "no_data")),  # no data
      suite_config("table1", "smoke,mlp_1x512", mesh_shape="3,1"),              # bad mesh
      suite_config("table1", "smoke,mlp_1x512", learning_rate=0.5),             # other config
      suite_config("table1", "mlp_1x512", dataset="synthetic",                  # not a smoke
                   synthetic_shape=(12, 12, 3)),
  ]
  for config in refused:
    with pytest.raises(UserError):
      suite.run_suite(config, str(tmp_path))
    assert snapshot(tmp_path) == before
  with pytest.raises(UserError, match="holds a suite with a different config .*smoke: True"):
    suite.run_suite(refused[-1], str(tmp_path))


def test_table1_without_its_data_leaves_nothing_and_names_the_offline_routes(tmp_path):
  with pytest.raises(UserError, match="image_folder.*cifar10_archive"):
    suite.run_suite(suite_config("table1", "mlp_1x512", data_dir=str(tmp_path / "none")),
                    str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_suite_subsets_accumulate_in_one_workdir(tmp_path):
  suite.run_suite(suite_config("table1", "smoke,mlp_1x512"), str(tmp_path))
  suite.run_suite(suite_config("table1", "smoke,mlp_3x512"), str(tmp_path))
  assert set(json.loads((tmp_path / "config.json").read_text())["runs"]) == {
      "mlp_1x512_center", "mlp_3x512_center"}
  rows = (tmp_path / "table1.csv").read_text().splitlines()
  filled = {row.split(",")[0] for row in rows[1:] if row.split(",")[5]}
  assert filled == {"mlp_1x512", "mlp_3x512"}  # both subsets in the table


def test_a_field_added_after_a_run_counts_as_its_default():
  saved = {"model": "mlp_1x512"}  # written before compute_dtype existed
  assert configuration.config_differences(saved, {"model": "mlp_1x512",
                                                "compute_dtype": "float32"}) == []
  assert configuration.config_differences(saved, {"model": "mlp_1x512",
                                                "compute_dtype": "bfloat16"}) == [
      "compute_dtype: 'float32' in the workdir, 'bfloat16' now"]


def test_the_committed_mlp_results_still_resume_after_an_upgrade():
  """scripts/results_cpu.sh's command for results/table1_mlp: its sub-runs' configs (made by
  older code) match."""
  config = suite_config("table1", "mlp,seeds=3", dataset="image_folder",
                        data_dir="data/cifar10-jpeg.tar.gz", class_order="cifar10",
                        num_epochs=80, eval_every_epochs=2, member_strategy="sequential")
  for name, sub in suite.sub_configs(config).items():
    configuration.check_workdir(os.path.join(ROOT, "results", "table1_mlp", name),
                              json.loads(sub.to_json()))


def test_a_torn_last_metrics_line_does_not_block_a_resume(tmp_path):
  train.train_and_evaluate(small(num_epochs=2), str(tmp_path))
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 99, "epo')  # a crash or a full disk in mid-write
  (tmp_path / "summary.json").unlink()
  longer = train.train_and_evaluate(small(num_epochs=4), str(tmp_path))
  assert longer["run"]["epochs"] == 4
  records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["epoch"] for r in records] == [e for e in (1, 2, 3, 4) for _ in range(2)]


def test_lost_metrics_are_reported_not_hidden(tmp_path):
  train.train_and_evaluate(small(num_epochs=2), str(tmp_path))
  (tmp_path / "metrics.jsonl").unlink()
  summary = train.train_and_evaluate(small(num_epochs=4), str(tmp_path))
  assert summary["run"]["metrics_lines_lost"] == 4  # 2 epochs x 2 members
  assert "metrics.jsonl is incomplete" in (tmp_path / "report.md").read_text()


HOLD = textwrap.dedent("""
    import sys, time
    from rethinking_jax.base import workdir
    with workdir.hold(sys.argv[1]):
      print("held", flush=True)
      time.sleep(120)
""")


def test_a_second_process_on_a_workdir_stops_with_the_holders_pid(tmp_path):
  holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    before = snapshot(tmp_path)
    line = one_line_error(cli(*QUICK, f"--workdir={tmp_path}"))
    assert f"is in use by process {holder.pid}" in line
    assert snapshot(tmp_path) == before
  finally:
    holder.kill()
    holder.wait()
  with workdir_lib.hold(str(tmp_path)):  # the lock died with its process
    pass


def write_folder(root, classes=("cat", "dog"), per_class=3, size=4):
  rng = np.random.default_rng(0)
  for split in ("train", "test"):
    for c in classes:
      (root / split / c).mkdir(parents=True, exist_ok=True)
      for i in range(per_class):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(
            root / split / c / f"{i}.png")


def test_ctrl_c_while_the_images_are_read_is_one_line_and_130(tmp_path):
  """Before training SIGINT is Python's KeyboardInterrupt, landing wherever the run is (here
  in the first image read: an image that is a FIFO blocks until the signal comes)."""
  write_folder(tmp_path / "images")
  fifo = tmp_path / "images" / "train" / "cat" / "0.png"
  fifo.unlink()
  os.mkfifo(fifo)
  proc = subprocess.Popen([*TERMINAL_CLI, *QUICK, "--config.dataset=image_folder",
                           f"--config.data_dir={tmp_path / 'images'}",
                           f"--workdir={tmp_path / 'run'}"], cwd=ROOT, stderr=subprocess.PIPE,
                          text=True, env={**os.environ, "RETHINKING_JAX_CACHE": str(tmp_path)})
  deadline = time.time() + 120
  while True:  # the run opens the FIFO to read it (the source's hash: its first read)
    try:
      writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
      break
    except OSError:  # ENXIO: no reader yet
      assert time.time() < deadline and proc.poll() is None, proc.stderr.read()[-2000:]
      time.sleep(0.05)
  time.sleep(0.3)  # reading, blocked: nothing is written to the FIFO
  proc.send_signal(signal.SIGINT)
  rest = proc.stderr.read()
  os.close(writer)
  assert proc.wait(timeout=60) == 130, rest[-2000:]
  assert rest.strip().splitlines()[-1].startswith("interrupted: Ctrl-C before training began")
  assert "Traceback" not in rest and "KeyboardInterrupt" not in rest
  assert not (tmp_path / "run" / "checkpoints").exists()


FILL_CACHE = textwrap.dedent("""
    import sys
    from rethinking_jax.data import image_folder
    print(image_folder.load_image_folder(sys.argv[1], cache_dir=sys.argv[2]).num_train)
""")


def test_two_processes_fill_one_image_cache(tmp_path):
  write_folder(tmp_path / "images", per_class=40)
  procs = [subprocess.Popen([sys.executable, "-c", FILL_CACHE, str(tmp_path / "images"),
                             str(tmp_path / "cache")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for _ in range(2)]
  for proc in procs:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.strip() == "80", err[-2000:]
  assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".npz"]  # no temporary left


# -- Tracebacks where a line was promised -----------------------------------------------------

def test_a_truncated_archive_is_one_line(tmp_path):
  write_folder(tmp_path / "images", per_class=20, size=16)
  archive = tmp_path / "images.tar.gz"
  with tarfile.open(archive, "w:gz") as tar:
    tar.add(tmp_path / "images", arcname="images")
  archive.write_bytes(archive.read_bytes()[:archive.stat().st_size // 2])
  with pytest.raises(UserError, match="damaged or truncated archive"):
    image_folder.load_image_folder(str(archive), cache_dir=str(tmp_path / "cache"))


def test_unusable_workdirs_are_refused_before_the_data_is_read(tmp_path, monkeypatch):
  def read(config):
    raise AssertionError("the data was read before the workdir was checked")

  monkeypatch.setattr(inputs, "load_dataset", read)
  (tmp_path / "file").write_text("x")
  with pytest.raises(UserError, match="is a file, not a directory"):
    train.train_and_evaluate(tiny_config(), str(tmp_path / "file"))
  with pytest.raises(UserError, match="which is a file"):
    workdir_lib.check_writable(str(tmp_path / "file" / "run"))
  if os.geteuid() != 0:  # root writes anywhere: the permission check cannot fail for root
    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(UserError, match="not writable"):
      workdir_lib.check_writable(str(tmp_path / "ro" / "run"))


def test_a_workdir_whose_layout_a_run_cannot_use_is_one_line(tmp_path, monkeypatch):
  """A `checkpoints` file (orbax would hang 5 minutes, then print a traceback) and a dangling
  symlink (a FileExistsError traceback): refused before the data is read; in a suite, before
any sub-run trains."""
  monkeypatch.setattr(inputs, "load_dataset", lambda config: pytest.fail("data read"))
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "checkpoints").write_text("x")
  with pytest.raises(UserError, match="run/checkpoints is a file, not the directory"):
    train.train_and_evaluate(tiny_config(), str(tmp_path / "run"))
  os.symlink(tmp_path / "gone", tmp_path / "link")
  with pytest.raises(UserError, match="link is a symbolic link to .*gone, which does not"):
    train.train_and_evaluate(tiny_config(), str(tmp_path / "link"))
  assert not (tmp_path / "gone").exists()
  monkeypatch.undo()  # a suite checks its sub-runs' configs (and data) first
  (tmp_path / "suite" / "a_mlp_1x512").mkdir(parents=True)
  (tmp_path / "suite" / "a_mlp_1x512" / "checkpoints").write_text("x")
  with pytest.raises(UserError, match="runs.a_mlp_1x512: workdir: .*checkpoints is a file"):
    suite.run_suite(importlib.import_module("rethinking_jax.configs.figure1").get_config("smoke"),
                    str(tmp_path / "suite"))


def test_an_unreadable_image_is_named_by_its_file(tmp_path):
  write_folder(tmp_path / "images", per_class=2)
  (tmp_path / "images" / "train" / "cat" / "broken.png").write_bytes(b"not a png")
  with pytest.raises(UserError, match=r"cannot read image 'train/cat/broken.png' \(not an "
                     "image file PIL can identify") as err:
    image_folder.load_image_folder(str(tmp_path / "images"), cache_dir=str(tmp_path / "c"))
  assert "BytesIO" not in str(err.value)


@pytest.mark.parametrize("config", ["quickstart.py", "fooling.py", "theorem1.py"])
def test_a_config_refuses_an_argument_it_does_not_take(config, tmp_path):
  line = one_line_error(cli(f"--config=configs/{config}:foo", f"--workdir={tmp_path}/run"))
  assert f"config argument 'foo': {config} does not take it; " in line
  assert not (tmp_path / "run").exists()


def test_help_exits_0_and_shows_the_flags_and_a_configs_fields(tmp_path):
  proc = cli("--help")
  assert proc.returncode == 0, proc.stderr[-2000:]
  for flag in ("--config=PATH[:ARG]", "--workdir=DIR", "--config.FIELD=VALUE"):
    assert flag in proc.stdout
  proc = cli("--config=configs/table1.py:alexnet", "--help")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "configs/table1.py:inception" in proc.stdout  # the docstring's variants
  assert "  runs = {alexnet_small_center, alexnet_small_random_crop}" in proc.stdout
  assert "  learning_rate = " in proc.stdout
  line = one_line_error(cli(f"--config={tmp_path}/none.py", f"--workdir={tmp_path}/run"))
  assert f"config: {tmp_path}/none.py does not exist" in line


def test_too_many_members_for_the_memory_is_one_line_before_compiling(tmp_path):
  """400 vmapped AlexNet members under a 4 GB address space: refused with how many fit (it
  was XLA's std::bad_alloc, exit 134, no message)."""
  import resource

  limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))
  proc = subprocess.run(
      [*CLI, *QUICK, "--config.dataset=synthetic", "--config.model=alexnet_small",
       "--config.randomizations=true_labels", f"--config.seeds={','.join(map(str, range(400)))}",
       "--config.member_strategy=vmap", f"--workdir={tmp_path}/run"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=limit)
  line = one_line_error(proc)
  assert "members: 400 members of alexnet_small need at least" in line
  assert "(the address-space limit (ulimit -v)); at most" in line
  assert "member_strategy=sequential" in line
  assert not (tmp_path / "run").exists()


def test_sequential_members_are_split_and_stacked_by_programs_that_do_not_grow_with_their_number():
  """One program with E outputs per leaf did not fit a 4 GB address space at E = 1,002 (the
  quickstart with 1,002 members now trains under `ulimit -v 4000000`)."""
  from rethinking_jax.engine import strategies

  def split_and_stack(n):
    tree = {"a": np.arange(float(n)), "b": np.zeros((n, 3), np.int32)}
    parts = strategies._split(tree, n)
    assert len(parts) == n and float(parts[n - 1]["a"]) == n - 1
    stacked = strategies._stack(parts)
    np.testing.assert_array_equal(stacked["a"], tree["a"])
    np.testing.assert_array_equal(stacked["b"], tree["b"])
    assert parts == [None] * n  # consumed: a member's state is dropped once written
    return tree

  split_and_stack(3)
  split_and_stack(strategies.MEMBERS_PER_PROGRAM + 1)

  def largest_program(n):  # the largest split or stack program for E = n members
    tree = split_and_stack(n)
    parts = strategies._split(tree, n)
    stacked = strategies._zeros_for(parts[0], n)
    texts = [strategies._zeros_for.lower(parts[0], n).as_text()]
    for start, stop in strategies._blocks(n):
      texts.append(strategies._members_in.lower(tree, start, stop - start).as_text())
      texts.append(strategies._put_block.lower(stacked, parts[start:stop], start).as_text())
    return max(map(len, texts))

  block = strategies.MEMBERS_PER_PROGRAM
  assert largest_program(1002) < 1.05 * largest_program(block)  # not E / block times larger
  # nor more programs: one for the full blocks and one for the last (each compiled program
  # holds machine code; one per block did not fit 4 GB at E = 1,002 either)
  for program in (strategies._members_in, strategies._put_block):
    program.clear_cache()
  split_and_stack(1002)
  assert strategies._members_in._cache_size() == 2
  assert strategies._put_block._cache_size() == 2


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, -3), ("a", "b", "c"), (8.5, 8, 3)])
def test_a_malformed_synthetic_shape_is_one_line(shape):
  with pytest.raises(UserError, match="synthetic_shape: .* three positive integers"):
    configuration.validate(tiny_config(synthetic_shape=shape))


def test_a_full_disk_is_one_line(tmp_path):
  """A 200 KB file system fills up at the first checkpoint (needs a private mount)."""
  probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=200k tmpfs "
                          f"{tmp_path}"], capture_output=True)
  if probe.returncode != 0:
    pytest.skip("cannot mount a small file system here (needs unshare and mount rights)")
  command = " ".join([f"mount -t tmpfs -o size=200k tmpfs {tmp_path} &&", *CLI, *QUICK,
                      "--config.num_epochs=10", f"--workdir={tmp_path}/run"])
  proc = subprocess.run(["unshare", "-m", "sh", "-c", command], cwd=ROOT, capture_output=True,
                        text=True, timeout=300)
  assert "disk: no space left on the device" in one_line_error(proc)


def test_a_file_size_limit_during_a_save_stops_the_run_in_one_line(tmp_path):
  """`ulimit -f`: tensorstore's write fails inside orbax's background save; the run stops at
  the next save (not trained on without a checkpoint), names the limit, leaves no partial
  checkpoint folder."""
  proc = subprocess.run(with_file_size_limit(200 * 1024, [
      *CLI, *QUICK, "--config.num_epochs=20", "--config.checkpoint_every_epochs=2",
      f"--workdir={tmp_path}"]), cwd=ROOT, capture_output=True, text=True, timeout=300)
  line = one_line_error(proc)
  assert "disk: file size limit exceeded (this process may write files of at most 204,800 " \
      "bytes: ulimit -f)" in line, line
  assert os.listdir(tmp_path / "checkpoints") == []  # the partial one removed
  assert not (tmp_path / "summary.json").exists()


def test_a_platform_the_machine_lacks_is_one_line(tmp_path):
  import jax

  if any(d.platform == "gpu" for d in jax.devices()):
    pytest.skip("this machine has a GPU")
  proc = cli(*QUICK, f"--workdir={tmp_path / 'run'}", env={**os.environ, "JAX_PLATFORMS": "gpu"})
  assert "error: JAX_PLATFORMS: 'gpu' is not available on this machine" in one_line_error(proc)
  assert not (tmp_path / "run").exists()


def test_a_report_that_cannot_be_written_names_the_file_and_keeps_the_old_one(tmp_path):
  """A re-render under a 10 KB file-size limit: the first figure fails to write."""
  import shutil

  workdir = tmp_path / "run"
  shutil.copytree(os.path.join(ROOT, "results", "figure1a_mlp_1x512"), workdir)
  before = snapshot(workdir)
  proc = subprocess.run(with_file_size_limit(10 * 1024, [
      sys.executable, "-m", "rethinking_jax.report", f"--workdir={workdir}"]), cwd=ROOT,
      capture_output=True, text=True, timeout=300)
  line = one_line_error(proc)
  assert re.search(rf"File too large writing {workdir}/\S+; the file there before \(if any\) "
                   "is intact", line), line
  assert snapshot(workdir) == before  # nothing replaced, no temporary file left


def test_a_config_file_with_a_syntax_error_is_one_line(tmp_path):
  (tmp_path / "bad.py").write_text("def get_config(:\n  pass\n")
  line = one_line_error(cli(f"--config={tmp_path / 'bad.py'}", f"--workdir={tmp_path}/run"))
  assert "bad.py, line 1: invalid syntax" in line


def test_a_bad_suite_argument_is_one_line_without_a_traceback(tmp_path):
  line = one_line_error(cli("--config=configs/table1.py:resnet", f"--workdir={tmp_path}"))
  assert line.startswith("error: config argument 'resnet' selects no run; allowed: smoke,")


def test_an_unknown_field_suggests_the_closest(tmp_path):
  line = one_line_error(cli(*QUICK, "--config.lerning_rate=1", f"--workdir={tmp_path}"))
  assert "unknown field 'lerning_rate'; did you mean learning_rate" in line


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once(tmp_path):
  """Inside one long compiled chunk (2,000 epochs between evaluations)."""
  proc = subprocess.Popen([*CLI, *QUICK, f"--workdir={tmp_path}", "--config.num_epochs=2000",
                           "--config.eval_every_epochs=2000", "--config.stop_when_memorized="
                           "False"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
  for line in proc.stderr:
    if "compiled the chunk program" in line:
      break
  time.sleep(0.5)
  proc.send_signal(signal.SIGINT)
  time.sleep(0.5)
  start = time.perf_counter()
  proc.send_signal(signal.SIGINT)
  proc.wait(timeout=30)
  rest = proc.stderr.read()
  assert proc.returncode == -signal.SIGINT and time.perf_counter() - start < 5
  assert "Traceback" not in rest and "KeyboardInterrupt" not in rest


# -- Silent surprises -------------------------------------------------------------------------

def test_stray_files_and_empty_class_folders_are_named(tmp_path, caplog):
  write_folder(tmp_path)
  (tmp_path / "train" / "README.txt").write_text("notes")
  (tmp_path / "train" / "horse").mkdir()
  with caplog.at_level(logging.INFO):
    ds = image_folder.load_image_folder(str(tmp_path), cache_dir=str(tmp_path / "cache"))
  assert ds.num_classes == 2
  assert "train/README.txt" in caplog.text and "train/horse" in caplog.text
  assert "decoding the 12 images" in caplog.text


def test_asking_for_more_examples_than_exist_is_an_error():
  with pytest.raises(UserError, match=r"num_train \(the config argument subset=N sets it\): "
                     "999999 is more than the 1,437 examples"):
    assemble.prepare(tiny_config(dataset="digits", num_train=999999))


def test_a_config_path_that_is_no_config_file_says_what_it_is(tmp_path):
  (tmp_path / "no_get_config.py").write_text("x = 1\n")
  line = one_line_error(cli(f"--config={tmp_path / 'no_get_config.py'}",
                            f"--workdir={tmp_path}/run"))
  assert "no_get_config.py defines no get_config()" in line, line
  line = one_line_error(cli("--config=configs", f"--workdir={tmp_path}/run"))
  assert "config: configs is a folder; allowed: a config file in it: figure1.py," in line, line
  assert "common.py" not in line


def test_rerunning_a_finished_run_keeps_its_compile_time(tmp_path):
  first = train.train_and_evaluate(small(num_epochs=2), str(tmp_path))
  again = train.train_and_evaluate(small(num_epochs=2), str(tmp_path))
  assert first["run"]["compile_seconds"] > 0
  assert again["run"]["compile_seconds"] == first["run"]["compile_seconds"]


def test_the_report_of_an_experiment_that_writes_its_own_is_one_line(tmp_path):
  """report re-renders training runs and suites; a fooling or theory workdir is named in one
  line (exit 2 through main's ValueError), not a KeyError traceback."""
  (tmp_path / "config.json").write_text(json.dumps({"experiment": "fooling"}))
  (tmp_path / "summary.json").write_text("{}")
  with pytest.raises(ValueError, match=r"^workdir: .* holds a fooling experiment, whose "
                                       r"report its own run writes \(rerun its config\)"):
    report.render(str(tmp_path))


def test_the_report_of_an_unfinished_run_renders_what_exists(tmp_path):
  train.train_and_evaluate(small(num_epochs=2), str(tmp_path))
  (tmp_path / "summary.json").unlink()
  text = open(report.render(str(tmp_path))).read()
  assert "Not finished" in text and "epoch 2" in text and "true_labels" in text


def test_missing_tfds_data_names_the_offline_routes(tmp_path):
  with pytest.raises(UserError, match="prepare_data.py cifar10.*offline.*image_folder.*"
                                      "cifar10_archive"):
    data.load("cifar10", data_dir=str(tmp_path))


def test_metrics_reader_drops_only_a_torn_last_line(tmp_path):
  from rethinking_jax.reports import files

  path = tmp_path / "m.jsonl"
  path.write_text('{"a": 1}\n{"a": 2}\n{"a"')
  assert files.read_jsonl(str(path)) == [{"a": 1}, {"a": 2}]
  path.write_text('{"a": 1}\n{"a"\n{"a": 2}\n')
  with pytest.raises(ValueError, match="line 2 is not JSON"):
    files.read_jsonl(str(path))


def test_metrics_lines_reach_a_metrics_file_replaced_under_the_run(tmp_path):
  """A `git stash` / `stash pop` (or an editor's save) replaces metrics.jsonl with a new file
  while a run trains: the later evaluation points must land in it, not in the replaced one
  (which a handle held open would keep writing, lost)."""
  from rethinking_jax.reports import files

  path = tmp_path / "metrics.jsonl"
  writer = files.MetricsWriter(str(path))
  writer.write([{"step": 1}])
  copy = tmp_path / "copy"
  copy.write_text(path.read_text())
  os.replace(copy, path)  # a new file at the same path, as git writes one
  writer.write([{"step": 2}, {"step": 3}])
  writer.close()
  assert files.read_jsonl(str(path)) == [{"step": 1}, {"step": 2}, {"step": 3}]
  resumed = files.MetricsWriter(str(path), keep_lines=2)  # a resume keeps what it saw
  resumed.write([{"step": 3}])
  assert files.read_jsonl(str(path)) == [{"step": 1}, {"step": 2}, {"step": 3}]


def test_outputs_are_written_under_unique_temporary_names(tmp_path):
  from rethinking_jax.base import atomic_files

  target = tmp_path / "x.json"
  with atomic_files.atomic_path(str(target)) as a, atomic_files.atomic_path(str(target)) as b:
    assert a != b
    open(a, "w").write("1")
    open(b, "w").write("2")
  assert target.read_text() in ("1", "2") and os.listdir(tmp_path) == ["x.json"]
  assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask



