"""scripts/paper_gpu.sh: every part of the paper's convolutional results, at a tiny scale on
the CPU (its --tiny flag), plus its budget and time-limit logic."""

import csv
import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import paper_gpu  # noqa: E402

PARTS = [part.name for part in paper_gpu.PARTS]


def script(*args):
  return subprocess.run(["bash", "scripts/paper_gpu.sh", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=900, env={**os.environ, "PYTHON": sys.executable})


def ours(csv_path, key):
  with open(csv_path) as f:
    return [row for row in csv.DictReader(f) if row[key] not in ("", "None")]


CHECKS = {  # part -> (CSV, column that must hold our numbers, the models it must cover)
    "table1_inception": ("table1.csv", "ours_train", {"inception_small",
                                                       "inception_small_nobn"}),
    "table1_alexnet": ("table1.csv", "ours_train", {"alexnet_small"}),
    "figure1bc_conv": ("figure1.csv", "test_error", {"inception_small", "alexnet_small"}),
    "table4_conv": ("table4.csv", "ours_train", {"inception_small", "alexnet_small"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("part", PARTS)
def test_every_part_runs_at_a_tiny_scale_and_reports_numbers(part, tmp_path):
  """One test per part, so that xdist spreads them; together they are `--tiny`."""
  proc = script(str(tmp_path), "--tiny", "--budget=600", f"--parts={part}")
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
  (record,) = json.loads((tmp_path / "parts.json").read_text())["parts"]
  assert record["status"] == "finished", record
  assert record["estimate_seconds"] > 0 and record["seconds"] > 0
  assert f"{part}: " in proc.stdout and "expected ~" in proc.stdout
  report = (tmp_path / part / "report.md").read_text()
  assert "dataset is synthetic, not the paper's CIFAR10" in report  # says what it is
  assert f"| {part} | finished |" in (tmp_path / "parts.md").read_text()
  if part == "figure1a":
    for kind in ("true_labels", "random_labels", "shuffled_pixels", "random_pixels",
                 "gaussian"):
      assert f"| {kind} |" in report
  elif part == "figure2b":
    assert "| inception_small_nobn |" in report
  else:
    name, column, models = CHECKS[part]
    assert {r["model"] for r in ours(tmp_path / part / name, column)} == models


def test_the_parts_run_most_important_first():
  assert PARTS == ["figure1a", "table1_inception", "figure2b", "table1_alexnet",
                   "figure1bc_conv", "table4_conv"]


def test_a_part_that_cannot_finish_in_the_budget_is_skipped_saying_so(tmp_path):
  proc = script(str(tmp_path), "--tiny", "--parts=table1_alexnet", "--budget=300",
                "--expected_epochs=1000000")
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
  (part,) = json.loads((tmp_path / "parts.json").read_text())["parts"]
  assert part["status"].startswith("skipped: needs ~") and "s left" in part["status"]
  assert not (tmp_path / "table1_alexnet").exists()


def test_a_part_at_its_time_limit_is_stopped_with_sigterm(tmp_path):
  sleeper = [sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, "
             "lambda *a: sys.exit(3)); time.sleep(60)"]
  start = time.perf_counter()
  status, seconds, limited = paper_gpu.run_limited(sleeper, 1.0, str(tmp_path / "log"))
  assert limited and status == 3 and seconds < 30 and time.perf_counter() - start < 30


def test_unknown_parts_and_missing_data_are_one_line_errors(tmp_path):
  proc = script(str(tmp_path), "--parts=figure9")
  assert proc.returncode == 2 and "--parts: unknown figure9; allowed: figure1a" in proc.stderr
  proc = script(str(tmp_path), f"--data={tmp_path}/none.tar.gz")
  assert proc.returncode == 2 and "does not exist" in proc.stderr
