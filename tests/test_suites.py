"""The paper's suite configs: every variant validates, every :smoke runs, reports render."""

import csv
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rethinking_jax import models, studies
from rethinking_jax.base.errors import UserError
from rethinking_jax.configs import default
from rethinking_jax.reports import convergence, protocol
from rethinking_jax.run import suite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITES = {"table1": ["", "smoke", "inception", "alexnet", "mlp_1x512", "smoke,mlp"],
          "figure1": ["", "smoke", "mlp_1x512", "smoke,alexnet"],
          "figure2": ["", "smoke"],
          "table4": ["", "smoke", "inception", "smoke,mlp_3x512"],
          "table2": ["", "smoke", "no_aug", "smoke,aug,no_aug_dropout"],
          "rademacher": ["", "smoke", "mlp_1x32", "smoke,seeds=2"]}


@pytest.mark.parametrize("name, arg", [(n, a) for n, args in SUITES.items() for a in args])
def test_every_config_variant_loads_and_validates(name, arg):
  config = importlib.import_module(f"rethinking_jax.configs.{name}").get_config(arg)
  subs = suite.sub_configs(config)
  assert subs and config.report == name
  assert config.smoke == ("smoke" in arg)
  for sub in subs.values():
    assert not sub.runs
    if "smoke" in arg:
      assert sub.dataset == "synthetic" and sub.num_epochs <= 2
    else:
      assert sub.dataset == ("imagenet2012" if name == "table2" else "cifar10")


def test_table1_covers_every_row_of_the_paper():
  subs = suite.sub_configs(importlib.import_module("rethinking_jax.configs.table1").get_config())
  assert len(subs) == 7
  assert {s.model for s in subs.values()} == {"inception_small", "inception_small_nobn",
                                              "alexnet_small", "mlp_3x512", "mlp_1x512"}


def test_table2_covers_every_row_of_the_paper():
  subs = suite.sub_configs(importlib.import_module("rethinking_jax.configs.table2").get_config())
  rows = set()
  for sub in subs.values():
    assert sub.model == "inception_v3" and sub.input_pipeline == "stream"
    for labels in sub.randomizations.split(","):
      for wd in sub.weight_decays.split(","):
        rows.add((sub.train_transform == "augment", sub.dropout_rate > 0, float(wd) > 0,
                  labels == "random_labels"))
  assert rows == {tuple(row[:4]) for row in studies.table2.PAPER}
  table2 = importlib.import_module("rethinking_jax.configs.table2")
  assert list(table2.get_config("aug").runs.keys()) == ["aug"]


def differences(report, config, summary):
  """The run's deviations from study `report`'s protocol."""
  return protocol.differences(studies.get(report).protocol(config), config, summary)


def test_a_study_without_its_own_seed_range_is_refused():
  """A new table must not silently reuse Table 1's seeds (and so its members): a study
  names its seed range (no default), and one already taken is refused."""
  with pytest.raises(TypeError, match="seed_offset"):
    studies.Study(name="table9", title="Table 9", runs=dict, section=lambda w, r: [])
  with pytest.raises(ValueError, match="seed_offset 0 is table1's"):
    studies.register(studies.Study(name="table9", title="Table 9", seed_offset=0, runs=dict,
                                   section=lambda w, r: []))
  with pytest.raises(ValueError, match="must be a multiple of 100"):
    studies.Study(name="table9", title="Table 9", seed_offset=150, runs=dict,
                  section=lambda w, r: [])
  with pytest.raises(ValueError, match="report 'table9' is not a study"):
    importlib.import_module("rethinking_jax.configs.common").suite("table9")


def test_a_config_argument_that_selects_nothing_is_an_error():
  with pytest.raises(ValueError, match="selects no run; allowed: smoke"):
    importlib.import_module("rethinking_jax.configs.table1").get_config("resnet")


def write_run(root, name, model, transform, members, epochs=3, **config):
  path = root / name
  path.mkdir(parents=True)
  (path / "config.json").write_text(json.dumps({"model": model, "train_transform": transform,
                                                **config}))
  summary = {"run": {"dataset": "cifar10", "num_train": 50000, "num_test": 10000,
                     "devices": 1, "device": "cpu", "platform": "cpu", "processes": 1,
                     "stop_reason": "every member memorized its training set",
                     "epochs": epochs, "wall_seconds": 1.0, "model": model},
             "members": members}
  for i, m in enumerate(members):
    m["member"] = i
  (path / "summary.json").write_text(json.dumps(summary))
  records = [{"member": i, "label": m["label"], "step": s * 10, "epoch": s,
              "train_loss": 1.0 / s, "train_acc": 0.96 if s >= epochs - 1 else 0.5,
              "test_acc": 0.1 * s, "test_loss": 1.0}
             for s in range(1, epochs + 1) for i, m in enumerate(members)]
  (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")


def member(label, randomization, wd=0.0, p=0.0, train=1.0, test=0.5, steps=100):
  return {"label": label, "randomization": randomization, "weight_decay": wd,
          "corruption_p": p, "train_acc": train, "test_acc": test, "best_test_acc": test,
          "steps_to_memorize": steps, "train_loss": 0.01}


def test_table1_report_from_a_fixture_workdir(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps(
      {"report": "table1", "smoke": False, "runs": {"mlp_1x512_center": {}, "missing": {}}}))
  write_run(tmp_path, "mlp_1x512_center", "mlp_1x512", "center_crop", [
      member("a", "true_labels", 0.0, test=0.5123), member("b", "true_labels", 1e-4),
      member("c", "random_labels", 0.0, train=0.9934, test=0.1)])
  report = open(studies.write_report(str(tmp_path))).read()
  assert ("| mlp_1x512 | no | no | true | 100.00 | 100.00 | +0.00 | 50.51 | 51.23 | +0.72 |"
          in report)
  assert ("| mlp_1x512 | no | no | random | 99.34 | 99.34 | +0.00 | 10.61 | 10.00 | -0.61 |"
          in report)
  assert "| inception_small | yes | yes | true | 100.00 | — |" in report  # not run: blank
  assert "runs not finished yet: missing" in report and "Smoke run" not in report
  assert ("an epoch is 390 steps of 128: each epoch's last partial batch (80 images) is "
          "dropped") in report
  rows = (tmp_path / "table1.csv").read_text().splitlines()
  assert len(rows) == 1 + 19


def test_a_tables_rows_take_members_another_suite_trained(tmp_path):
  """Table 1 drawn with --sources: the rows gain the members of another suite's workdir
  (Figure 1a's true- and random-label members are Table 1's rows too), named by their path,
  and the report says where they came from and the command that draws it."""
  table, other = tmp_path / "table1", tmp_path / "figure1a"
  for root, runs in ((table, {"mlp_1x512_center": {}}), (other, {"a_mlp": {}})):
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"report": "table1", "runs": runs}))
  write_run(table, "mlp_1x512_center", "mlp_1x512", "center_crop",
            [member("a", "true_labels", 0.0, test=0.50)])
  write_run(other, "a_mlp", "mlp_1x512", "center_crop",
            [member("b", "true_labels", 0.0, test=0.52), member("c", "gaussian")], panel="a")
  alone = open(studies.write_report(str(table))).read()
  assert "| mlp_1x512 | no | no | true | 100.00 | 100.00 | +0.00 | 50.51 | 50.00 |" in alone
  report = open(studies.write_report(str(table), [str(other)])).read()
  assert ("| mlp_1x512 | no | no | true | 100.00 | 100.00 ± 0.00 (2) | +0.00 | 50.51 | "
          "51.00 ± 1.41 (2) |") in report
  assert f"With the runs of `{other}`" in report and f"--sources={other}`" in report
  assert "| [../figure1a/a_mlp](../figure1a/a_mlp/report.md) |" in report
  with pytest.raises(ValueError, match="is not a suite's workdir"):
    studies.write_report(str(table), [str(other / "a_mlp")])
  from rethinking_jax import report as report_command
  with pytest.raises(ValueError, match="holds a single run"):
    report_command.render(str(other / "a_mlp"), [str(table)])
  # into a workdir without a run: Figure 1 as one figure from the sources' runs
  figure = open(studies.figure1.combined(str(tmp_path / "figure1"), [str(other)])).read()
  assert f"- `{other}` ([its report](../figure1a/report.md))" in figure
  assert (tmp_path / "figure1" / "figure1.png").exists()


def test_figure_reports_from_a_fixture_workdir(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps(
      {"report": "figure1", "smoke": True, "runs": {"a_inception_small": {},
                                                    "bc_mlp_1x512": {}}}))
  write_run(tmp_path, "a_inception_small", "inception_small", "center_crop",
            [member("true", "true_labels"), member("gauss", "gaussian")])
  write_run(tmp_path, "bc_mlp_1x512", "mlp_1x512", "center_crop",
            [member(f"p{p}", "corrupt_labels", p=p, steps=int(100 * (1 + p)), test=1 - p / 2)
             for p in (0.0, 0.5, 1.0)])
  report = open(studies.write_report(str(tmp_path))).read()
  assert "Smoke run" in report and "![Figure 1](figure1.png)" in report
  assert "| mlp_1x512 | 1 | 96% | 20 | 1.00 | 50.00 | 89.39 |" in report
  assert "not every member reached 100% train accuracy" in report
  assert ("mlp_1x512: (c)'s test errors are those at the end of the run (epoch 3, every member "
          "memorized its training set), not at each member's own convergence") in report
  assert (tmp_path / "figure1.png").read_bytes()[:4] == b"\x89PNG"
  (tmp_path / "config.json").write_text(json.dumps(
      {"report": "figure2", "runs": {"inception_small": {}}}))
  write_run(tmp_path, "inception_small", "inception_small", "center_crop",
            [member("true", "true_labels", test=0.8)])
  report = open(studies.write_report(str(tmp_path))).read()
  assert "| inception_small | 100.00 | 80.00 | 80.00 |" in report
  assert (tmp_path / "figure2.png").exists()


def test_the_convergence_threshold_is_the_highest_accuracy_every_member_reached():
  """Rounded down to 0.1%, at fully measured points only, within the first 3/4 of the steps
  (a crossing at the cap measures the cap); 100% when all memorized."""
  def run(*accs, partial=None, late=None):
    metrics = [{"member": m, "step": 10, "train_acc": a, "train_examples": 100}
               for m, a in enumerate(accs)]
    metrics += [{"member": m, "step": 40, "train_acc": a, "train_examples": 100}
                for m, a in enumerate(accs)]  # the cap: step 40
    if partial is not None:  # a cheap point over part of the split does not count
      metrics.append({"member": 0, "step": 11, "train_acc": partial, "train_examples": 7})
    if late is not None:  # member 0 gets there only at the cap
      metrics.append({"member": 0, "step": 40, "train_acc": late, "train_examples": 100})
    return {"metrics": metrics, "summary": {"members": [{"member": m} for m in
                                                         range(len(accs))]}}

  assert convergence.common_threshold(run(0.98765, 0.9991)) == 0.987
  assert convergence.common_threshold(run(0.98765, 0.9991, partial=1.0)) == 0.987
  assert convergence.common_threshold(run(1.0, 1.0)) == 1.0
  assert convergence.common_threshold(run(0.9, 1.0)) == 0.9
  assert convergence.common_threshold(run(0.9, 1.0, late=0.995)) == 0.9  # not 0.995
  assert convergence.common_threshold(run(0.9, 1.0, late=0.995), before_cap=1.0) == 0.995
  assert convergence.common_threshold(run(0.9, 1.0, late=1.0)) == 1.0  # all memorized


def test_a_crossing_is_known_from_the_last_point_below_it_to_the_first_at_it():
  """A member evaluated every 10 steps, then (resumed) every 2: its 100% crossing lies after
  the last point that showed it below -- a point over part of the split counts at 100% (it
  stopped at an error) but not below 100% (it did not measure the split)."""
  full, part = 100, 7
  points = [(10, 0.5, full), (20, 0.9, full), (30, 0.97, part), (32, 0.99, part),
            (34, 0.995, part), (36, 1.0, full), (40, 1.0, full)]
  metrics = [{"member": 0, "step": s, "train_acc": a, "train_examples": n}
             for s, a, n in points]
  metrics.append({"member": 1, "step": 10, "train_acc": 1.0, "train_examples": full})
  assert convergence.crossing_windows(metrics, 1.0) == {0: (34, 36), 1: (0, 10)}
  assert convergence.crossing_windows(metrics, 0.99) == {0: (20, 36), 1: (0, 10)}


def test_figure1_finds_its_runs_by_their_declared_panel_not_their_name(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps(
      {"report": "figure1", "runs": {"loss_curves": {"panel": "a"},
                                     "corruption_mlp": {"panel": "bc"},
                                     "bc_mlp_1x512": {"panel": ""}}}))
  write_run(tmp_path, "loss_curves", "inception_small", "center_crop",
            [member("true", "true_labels"), member("gauss", "gaussian")], panel="a")
  write_run(tmp_path, "corruption_mlp", "mlp_1x512", "center_crop",
            [member(f"p{p}", "corrupt_labels", p=p, test=1 - p / 2) for p in (0.0, 1.0)],
            panel="bc")
  write_run(tmp_path, "bc_mlp_1x512", "mlp_1x512", "center_crop",  # declared: no panel
            [member("p0", "corrupt_labels", p=0.0, test=0.01)], panel="")
  report = open(studies.write_report(str(tmp_path))).read()
  assert "| true_labels | 20 | 1.00 |" in report  # Figure 1a's table, from loss_curves
  assert "| mlp_1x512 | 1 | 96% | 20 | 1.00 | 50.00 | 89.39 |" in report  # corruption_mlp
  assert "| 99.00 |" not in report  # not the run whose name only looks like a panel's


def test_a_panel_the_report_does_not_have_is_refused_before_anything_trains(tmp_path):
  from helpers import tiny_config

  config = tiny_config(report="figure1", runs={"x": {"panel": "z"}})
  with pytest.raises(UserError, match=r"runs\.x\.panel: 'z' .* allowed: a, bc"):
    suite.run_suite(config, str(tmp_path))
  assert not any(tmp_path.iterdir())


def test_table2_report_from_a_fixture_workdir(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps(
      {"report": "table2", "runs": {"no_aug": {}, "aug": {}}}))
  rows = [member("t", "true_labels", 0.0, train=0.9953, test=0.5980),
          member("r", "random_labels", 0.0, train=0.9, test=0.001)]
  for m in rows:
    m["train_top5"], m["test_top5"] = 1.0, 0.8
  write_run(tmp_path, "no_aug", "inception_v3", "center_crop", rows, dropout_rate=0.0,
            stop_when_memorized=False)
  report = open(studies.write_report(str(tmp_path))).read()
  assert ("| no | no | no | true | 99.53 / 99.53 | 100.00 / 100.00 | 59.80 / 59.80 | "
          "80.38 / 80.00 | 63.16 / 30.00 | 84.49 / — |") in report
  assert "| no | no | no | random | 95.20 / 90.00 |" in report
  assert "| yes | yes | yes | true | 92.18 / — |" in report  # not run: blank
  assert "dataset is cifar10, not the paper's ImageNet (imagenet2012)" in report  # fixture's
  assert "before" not in report  # a fixed schedule, not a memorization run
  assert len((tmp_path / "table2.csv").read_text().splitlines()) == 1 + 7
  assert (tmp_path / "figure2a.png").read_bytes()[:4] == b"\x89PNG"


# The :smoke variants of the MLP runs and of Table 2 (Inception V3, streamed). The
# convolutional suites run end to end, with numbers checked, in tests/test_paper_gpu.py (the
# real configs on a few hundred synthetic images). Of Table 2's four Inception V3 runs, two
# cover every switch (augment + dropout + weight decay; center crop with true/random labels x
# weight decay on/off); the other two combine the same switches.
SMOKES = ["table1.py:smoke,mlp", "figure1.py:smoke,mlp", "table4.py:smoke,mlp",
          "table2.py:smoke,aug_dropout_wd", "table2.py:smoke,no_aug", "rademacher.py:smoke,seeds=2"]


@pytest.mark.slow
@pytest.mark.parametrize("config", SMOKES)
def test_smoke_variants_run_end_to_end_offline(config, tmp_path):
  proc = subprocess.run([sys.executable, "-m", "rethinking_jax.main", f"--config=configs/{config}",
                         f"--workdir={tmp_path}", "--config.progress=False"], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = (tmp_path / "report.md").read_text()
  assert "Smoke run" in report and "## Runs" in report
  top = json.loads((tmp_path / "config.json").read_text())
  for name in top["runs"]:
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    assert f"[{name}]({name}/report.md)" in report
    for m in summary["members"]:  # every member trained and was evaluated
      assert 0 <= m["train_acc"] <= 1 and 0 <= m["test_acc"] <= 1 and m["train_loss"] > 0
  name = config.split(".")[0]
  csv_name = {"table1": "table1.csv", "figure1": "figure1.csv", "table4": "table4.csv",
              "table2": "table2.csv", "rademacher": "rademacher.csv"}[name]
  with open(tmp_path / csv_name) as f:
    rows = list(csv.DictReader(f))
  ours = [k for k in rows[0] if k.startswith("ours") or k in ("test_error", "steps", "estimate")]
  assert any(row[k] not in ("", "None") for row in rows for k in ours), rows  # our numbers


def test_a_run_stopped_on_the_way_is_reported_with_what_it_reached(tmp_path):
  """A time limit or a signal stopped a sub-run: no summary.json, its last evaluation shown."""
  from helpers import tiny_config

  (tmp_path / "config.json").write_text(json.dumps(
      {"report": "table1", "runs": {"mlp_1x512_center": {}}}))
  run = tmp_path / "mlp_1x512_center"
  run.mkdir()
  config = tiny_config(model="mlp_1x512", randomizations="true_labels,random_labels",
                       weight_decays="0")
  (run / "config.json").write_text(config.to_json())
  records = [{"member": m, "label": label, "step": 10 * e, "epoch": e, "train_loss": 0.5,
              "train_acc": 0.25 * e + 0.1 * m, "test_acc": 0.3, "test_loss": 1.0,
              "wall_time": 2.0 * e}
             for e in (1, 2, 3) for m, label in enumerate(("true_labels", "random_labels"))]
  (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
  report = open(studies.write_report(str(tmp_path))).read()
  assert "`mlp_1x512_center` did not finish" in report and "epoch 3" in report
  assert "| mlp_1x512 | no | no | true | 100.00 | 75.00 |" in report
  assert "| mlp_1x512 | no | no | random | 99.34 | 85.00 |" in report


def test_seeds_are_members_with_their_own_keys_in_every_experiment():
  configs = {name: importlib.import_module(f"rethinking_jax.configs.{name}").get_config("seeds=3")
             for name in SUITES}
  seeds = {name: set(c.seeds.split(",")) for name, c in configs.items()}
  assert seeds["table1"] == {"0", "1", "2"}
  for a in seeds:
    for b in seeds:
      assert a == b or not seeds[a] & seeds[b]  # no member shared between experiments
  with pytest.raises(ValueError, match="seeds=N takes a positive integer"):
    importlib.import_module("rethinking_jax.configs.table1").get_config("seeds=0")


def test_a_row_trained_with_seeds_reports_mean_and_spread(tmp_path):
  config = importlib.import_module("rethinking_jax.configs.table1").get_config(
      "smoke,mlp_1x512,seeds=2")
  config.progress = False
  suite.run_suite(config, str(tmp_path))
  summary = json.loads((tmp_path / "mlp_1x512_center" / "summary.json").read_text())
  assert len(summary["members"]) == 2 * 2 * 2  # labels x weight decays x seeds
  with open(tmp_path / "table1.csv") as f:
    rows = [r for r in csv.DictReader(f) if r["model"] == "mlp_1x512"]
  assert {r["ours_train_n"] for r in rows} == {"2"} and all(r["ours_train_sd"] for r in rows)
  report = (tmp_path / "report.md").read_text()
  assert report.count(" (2) |") >= 6  # every filled cell: mean ± sd (2)


def test_an_off_protocol_run_lists_each_of_its_deviations(tmp_path):
  config = importlib.import_module("rethinking_jax.configs.table1").get_config("smoke,mlp_1x512")
  config.progress = False
  config.learning_rate, config.lr_decay_rate, config.batch_size = 0.5, 1.0, 32
  config.num_epochs = 3
  suite.run_suite(config, str(tmp_path))
  report = (tmp_path / "report.md").read_text()
  deviations = next(line for line in report.splitlines() if line.startswith("Deviations"))
  for expected in ("dataset is synthetic, not the paper's CIFAR10", "num_train 64 (paper "
                   "50,000)", "num_test 32 (paper 10,000)", "crop_size 10 (paper 28)",
                   "batch_size 32 (paper 128)", "lr_decay_rate 1 (paper 0.95)",
                   "learning_rate 0.5 (paper 0.01)", "reached 100% train accuracy"):
    assert expected in deviations, (expected, deviations)
  single = (tmp_path / "mlp_1x512_center" / "report.md").read_text()
  assert "learning_rate 0.5 (paper 0.01)" in single and "test labels are the true ones" in single


def test_a_faithful_run_records_no_deviation():
  config = json.loads(
      importlib.import_module("rethinking_jax.configs.table1").get_config("mlp").to_json())
  summary = {"run": {"num_train": 50_000, "num_test": 10_000},
             "members": [{"weight_decay": 0.0}, {"weight_decay": 1e-4}]}
  assert differences("table1", {**config, "model": "mlp_1x512"}, summary) == []
  config["runs"] = {}
  assert differences("table4", {**config, "model": "inception_small",
                                         "train_transform": "augment"}, summary) == [
      "lr_decay_rate 0.95 (paper 0.999)", "weight_decays {0, 0.0001} (paper {0, 0.0005})"]


@pytest.mark.parametrize("model", sorted(models.PAPER_LEARNING_RATES))
def test_the_base_configs_defaults_are_the_papers_protocol(model):
  """The paper's values live twice by design: as the base config's defaults (what a run does)
  and as reports/protocol.py's data (what a report compares with). A default run of every
  paper model on the whole of CIFAR10 differs from the protocol in nothing, so neither side
  can drift alone (mutation-checked: momentum 0.8 in base_config). The batch-norm [default]s,
  where the paper is silent, are one constant on both sides (models/defaults.py)."""
  config = json.loads(default.get_config().to_json())
  config["model"] = model
  weight_decays = sorted(protocol.cifar10(config)["weight_decays"])
  summary = {"run": {"num_train": 50_000, "num_test": 10_000},
             "members": [{"weight_decay": w} for w in weight_decays]}
  assert protocol.differences(protocol.cifar10(config), config, summary) == []


def test_a_batch_norm_model_lists_its_batch_norm_settings_and_others_do_not():
  """docs/PROTOCOL.md's batch-norm [default]s (momentum 0.999, epsilon 1e-3) are the protocol of a
  model with batch norm (the CPU Inception runs use 0.99: results_cpu.sh); a model without
  batch norm ignores the fields, so they are no deviation of it."""
  config = json.loads(
      importlib.import_module("rethinking_jax.configs.table1").get_config("mlp").to_json())
  summary = {"run": {"num_train": 50_000, "num_test": 10_000},
             "members": [{"weight_decay": 0.0}]}
  changed = {**config, "bn_momentum": 0.99, "bn_epsilon": 1e-5}
  assert differences("figure1", {**changed, "model": "inception_small"}, summary) == [
      "bn_momentum 0.99 (paper 0.999)", "bn_epsilon 1e-05 (paper 0.001)"]
  assert differences("figure1", {**config, "model": "inception_small"}, summary) == []
  assert differences("figure1", {**changed, "model": "alexnet_small"}, summary) == []


def test_the_rademacher_estimate_is_two_train_accuracy_minus_one_on_random_binary_labels(
    tmp_path):
  """configs/rademacher.py: labels folded to 2 classes, every member its own uniform +-1
  labelling; the report's estimate is 2 x train accuracy - 1 of those members."""
  from helpers import fit

  config = importlib.import_module("rethinking_jax.configs.rademacher").get_config(
      "smoke,mlp_1x512,seeds=3")
  sub = suite.sub_configs(config)["mlp_1x512"]
  run, result = fit(sub)
  assert run.dataset.num_classes == 2 and set(np.unique(run.dataset.train_labels)) <= {0, 1}
  labels = np.asarray(run.inputs.labels.train)
  assert set(np.unique(labels)) == {0, 1} and 0.35 < labels.mean() < 0.65
  assert np.mean(labels[0] != labels[1]) > 0.3  # independent labellings per member
  by_step = studies.rademacher.estimates(
      {"summary": {"members": [{"member": m, "randomization": "random_labels"}
                               for m in range(3)]}, "metrics": result.history})
  last = result.history[-1]["step"]
  assert by_step[last] == pytest.approx(
      [2 * r["train_acc"] - 1 for r in result.history if r["step"] == last])


def test_figure1a_puts_a_models_per_kind_runs_back_together(tmp_path):
  """The small AlexNet's Figure 1a as one sub-run per input kind (each member 0 of its own
  run) reads as one panel: one section, every kind a row, each its own steps."""
  kinds = {"true_labels": 20, "random_labels": 30}
  (tmp_path / "config.json").write_text(json.dumps(
      {"report": "figure1", "runs": {f"a_alexnet_small_{k}": {"panel": "a"} for k in kinds}}))
  for kind, steps in kinds.items():
    write_run(tmp_path, f"a_alexnet_small_{kind}", "alexnet_small", "center_crop",
              [member(kind, kind, steps=steps)], epochs=steps // 10, panel="a")
    path = tmp_path / f"a_alexnet_small_{kind}" / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for r in records:
      r["train_acc"] = 1.0 if r["step"] == steps else 0.5
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
  report = open(studies.write_report(str(tmp_path))).read()
  assert report.count("### (a) alexnet_small") == 1
  assert "| true_labels | 20 | 1.00 |" in report
  assert "| random_labels | 30 | 1.50 |" in report
  assert "Ours, fastest first: true_labels < random_labels." in report
  # a third kind still on the way (stopped, no summary yet) does not lower the threshold
  config = json.loads((tmp_path / "config.json").read_text())
  config["runs"]["a_alexnet_small_gaussian"] = {"panel": "a"}
  (tmp_path / "config.json").write_text(json.dumps(config))
  write_run(tmp_path, "a_alexnet_small_gaussian", "alexnet_small", "center_crop",
            [member("gaussian", "gaussian", steps=None)], epochs=2,
            **{k: v for k, v in json.loads(default.get_config().to_json()).items()
               if k not in ("model", "train_transform")}
            | {"panel": "a", "randomizations": "gaussian"})
  (tmp_path / "a_alexnet_small_gaussian" / "summary.json").unlink()
  report = open(studies.write_report(str(tmp_path))).read()
  assert "Steps to 100% train accuracy" in report and "| true_labels | 20 | 1.00 |" in report
  assert "| gaussian | not finished: 96.0% train accuracy at step 20 |" in report
  assert "true_labels < random_labels (still training: gaussian)." in report


def test_figure1a_order_says_what_the_evaluation_grid_and_the_seeds_resolve():
  """Two kinds are ordered only where, in every seed with all kinds finished, the later one's
  crossing is known to come after the earlier's (it lies after the last point that showed it
  below: on one grid, the later reached 100% at least one interval after the earlier);
  otherwise they share a group (written ≈)."""
  reach = {  # member: steps, for kinds a, b, c, d over seeds 1, 2 (and a alone in seed 3)
      0: 100, 1: 95, 2: 130, 3: 140,     # seed 1
      4: 110, 5: 105, 6: 150, 7: 140,    # seed 2: d before c here
      8: 10}                             # seed 3: only kind a, so no order from it
  kinds = ("a", "b", "c", "d")
  ms = [{"member": 4 * i + j, "randomization": k, "seed": s}
        for i, s in enumerate((1, 2)) for j, k in enumerate(kinds)]
  ms.append({"member": 8, "randomization": "a", "seed": 3})

  def every_10(reach):  # evaluated every 10 steps: each crossing came after the point before
    return {m: s - 10 for m, s in reach.items() if s is not None}

  groups, seeds = studies.figure1.order_of_kinds(ms, reach, every_10(reach))
  assert seeds == [1, 2]
  # b and a 5 steps apart in both seeds: within the grid; c before d in seed 1 (10 apart)
  # but after it in seed 2: unresolved; b/a before c by >= 10 in both seeds: resolved.
  assert groups == [["b", "a"], ["c", "d"]]
  later = {**reach, 7: 160}
  assert studies.figure1.order_of_kinds(ms, later, every_10(later))[0] == [
      ["b", "a"], ["c"], ["d"]]
  # seed 2 incomplete (b did not reach it): seed 1 alone orders them, d 10 after c
  lacking = {**reach, 5: None}
  assert studies.figure1.order_of_kinds(ms, lacking, every_10(lacking)) == (
      [["b", "a"], ["c"], ["d"]], [1])
  # b 2 steps after a in both seeds: one grid of 10 cannot order them; evaluated finely
  # near the crossings (a's seen after 96 and 107, b's after 100 and 110: b's windows begin
  # where a had already crossed), it can
  close = {**reach, 1: 102, 5: 112}
  assert studies.figure1.order_of_kinds(ms, close, every_10(close))[0] == [
      ["a", "b"], ["c", "d"]]
  fine = {**every_10(close), 0: 96, 4: 107, 1: 100, 5: 110}
  assert studies.figure1.order_of_kinds(ms, close, fine)[0] == [["a"], ["b"], ["c", "d"]]


def test_figure1bc_puts_a_models_per_level_runs_back_together(tmp_path):
  """Figure 1b/1c from one sub-run per corruption level (bc_alexnet_small_pPERCENT): one row
  per level, each relative to the p = 0 run, and (c) said to be at each member's own
  convergence."""
  levels = {0.0: 20, 0.5: 30, 1.0: 40}
  names = {p: f"bc_alexnet_small_p{round(100 * p)}" for p in levels}
  (tmp_path / "config.json").write_text(json.dumps(
      {"report": "figure1", "runs": {name: {"panel": "bc"} for name in names.values()}}))
  for p, steps in levels.items():
    write_run(tmp_path, names[p], "alexnet_small", "center_crop",
              [member(f"p{p}", "corrupt_labels", p=p, steps=steps, test=1 - p / 2)],
              epochs=steps // 10, panel="bc")
    summary = json.loads((tmp_path / names[p] / "summary.json").read_text())
    summary["run"]["stop"] = "memorized"
    (tmp_path / names[p] / "summary.json").write_text(json.dumps(summary))
    path = tmp_path / names[p] / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for r in records:
      r["train_acc"] = 1.0 if r["step"] == steps else 0.5
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
  report = open(studies.write_report(str(tmp_path))).read()
  assert "| alexnet_small | 0 | 100% | 20 | 1.00 |" in report
  assert "| alexnet_small | 0.5 | 100% | 30 | 1.50 | 25.00 | — |" in report
  assert "| alexnet_small | 1 | 100% | 40 | 2.00 | 50.00 |" in report
  assert ("alexnet_small: one sub-run per level, each stopped when its member memorized: (c)'s "
          "test errors are at each member's own convergence") in report
  c = importlib.import_module("rethinking_jax.configs.figure1").get_config("bc_alexnet_small_p")
  assert sorted(c.runs) == sorted(f"bc_alexnet_small_p{q}" for q in (0, 20, 40, 60, 80, 100))


def test_figure1bc_legend_says_how_many_seeds_each_level_has(tmp_path, monkeypatch):
  """A model whose levels have 2 seeds at p = 0 and 1 at p = 1 (a second seed still on its
  way): its (b, c) curve is labelled '1-2 seeds', not '2 seeds'."""
  runs = {"bc_p0_s1": (0.0, 1), "bc_p0_s2": (0.0, 2), "bc_p100_s1": (1.0, 1),
          "bc_p100_s2": (1.0, 2),  # still training (no summary.json)
          "bc_p50_s2": (0.5, 2)}   # still training, the level's only member: no row yet
  (tmp_path / "config.json").write_text(json.dumps(
      {"report": "figure1", "runs": {name: {"panel": "bc"} for name in runs}}))
  for name, (p, seed) in runs.items():
    m = member(f"p{p}", "corrupt_labels", p=p, steps=20 * (1 + p),
               test=0.2 if name == "bc_p100_s2" else 0.5)
    m["seed"] = seed
    write_run(tmp_path, name, "alexnet_small", "center_crop", [m], epochs=4, panel="bc",
              randomizations=f"corrupt_labels:{p:g}", seeds=str(seed))
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    summary["run"]["stop"] = "memorized"
    (tmp_path / name / "summary.json").write_text(json.dumps(summary))
  (tmp_path / "bc_p100_s2" / "summary.json").unlink()
  (tmp_path / "bc_p50_s2" / "summary.json").unlink()
  drawn = []
  monkeypatch.setattr(studies.figure1, "draw", lambda workdir, a, curves: drawn.extend(curves))
  report = open(studies.write_report(str(tmp_path))).read()
  assert [label for _, label, _ in drawn] == ["alexnet_small (to 96% train acc.), 1-2 seeds"]
  assert "(c)'s test errors are at each member's own convergence" in report
  (row,) = [line for line in report.splitlines() if line.startswith("| alexnet_small | 1 |")]
  assert row.split(" | ")[5] == "50.00", row  # (c): its finished seed only
  assert "| alexnet_small | 0.5 |" not in report


def test_a_subset_keeps_the_papers_schedule_per_step():
  """subset=10000: 78 steps per epoch, the decay still every 390 steps (the paper's epoch)
  and the cap still 200 paper epochs of steps; a decay per subset epoch would be 5x faster."""
  from rethinking_jax.engine import program
  figure1 = importlib.import_module("rethinking_jax.configs.figure1")
  c = figure1.get_config("a_alexnet_small,subset=10000")
  assert sorted(c.runs) == [f"a_alexnet_small_{k}" for k in sorted(studies.figure1.KINDS)]
  assert c.num_train == 10_000
  steps_per_epoch = program.steps_per_epoch(c.num_train, c.batch_size)
  assert program.lr_interval_steps(c.lr_decay_every_epochs, steps_per_epoch) == 390
  assert c.num_epochs * steps_per_epoch >= 200 * 390 > (c.num_epochs - 1) * steps_per_epoch
  whole = figure1.get_config("a_alexnet_small")
  assert whole.num_train == 0 and whole.lr_decay_every_epochs == 1.0
  for bad in ("subset=0", "subset=x", "subset=100"):
    with pytest.raises(ValueError, match="subset="):
      figure1.get_config(f"a_alexnet_small,{bad}")


def test_the_decay_interval_is_held_to_the_paper_in_steps():
  """A subset run that decays every 5 of its 78-step epochs keeps the paper's 390 steps: no
  deviation; the same interval on all 50,000 images (1,950 steps) is one."""
  config = json.loads(importlib.import_module("rethinking_jax.configs.figure1").get_config(
      "a_alexnet_small,subset=10000").to_json())
  config["runs"] = {}
  subset = {"run": {"num_train": 10_000, "num_test": 10_000}, "members": []}
  whole = {"run": {"num_train": 50_000, "num_test": 10_000}, "members": []}
  assert differences("figure1", {**config, "model": "alexnet_small"}, subset) == [
      "num_train 10,000 (paper 50,000)"]
  assert "lr decay every (steps) 1950 (paper 390)" in differences(
      "figure1", {**config, "model": "alexnet_small"}, whole)


def test_per_member_splits_each_run_into_its_members_and_nothing_else():
  """`per_member`: one sub-run per member, together exactly the members of the unsplit runs
  (each with its own seed), so each stops at its own memorization (Table 1 on the CPU)."""
  from rethinking_jax.engine import members as members_lib
  table1 = importlib.import_module("rethinking_jax.configs.table1")

  def settings(config):
    out = []
    for sub in suite.sub_configs(config).values():
      for spec in members_lib.from_config(sub):
        out.append((sub.model, sub.train_transform, spec.randomization.kind, spec.seed,
                    spec.weight_decay))
    return sorted(out)

  whole = table1.get_config("alexnet_small,seeds=3,subset=10000")
  split = table1.get_config("alexnet_small,per_member,seeds=3,subset=10000")
  assert len(split.runs) == len(settings(split)) == 18
  assert settings(split) == settings(whole)
  name = "alexnet_small_random_crop_true_labels_wd_seed2"
  one = suite.sub_configs(table1.get_config(f"{name},per_member,seeds=3"))
  assert list(one) == [name] and one[name].seeds == "2" and one[name].weight_decays == "0.0005"


def test_a_config_is_checked_once_per_run_and_once_per_suite_sub_run(monkeypatch, tmp_path):
  from helpers import tiny_config

  from rethinking_jax.run import base_config, configuration, train

  checked = []
  validate = configuration.validate
  monkeypatch.setattr(configuration, "validate",
                      lambda c: checked.append(c.model) or validate(c))
  config = importlib.import_module("rethinking_jax.configs.table1").get_config("smoke,mlp")
  config.progress = False
  suite.run_suite(config, str(tmp_path / "suite"))
  assert sorted(checked) == ["mlp_1x512", "mlp_3x512"]  # before any trains, and not again
  checked.clear()
  train.train_and_evaluate(tiny_config(), str(tmp_path / "run"))
  assert checked == ["mlp_1x512"]
  assert base_config.resume_may_change() <= set(base_config.get_config())  # declared fields


def test_per_member_splits_learning_rates_too():
  """A run with several learning rates becomes one run per rate, each with one member."""
  common = importlib.import_module("rethinking_jax.configs.common")
  base = default.get_config()
  runs = common.per_member({"r": {"model": "mlp_1x512", "learning_rates": "0.01,0.1"}}, base)
  assert sorted(runs) == ["r_true_labels_lr0_seed0", "r_true_labels_lr1_seed0"]
  assert runs["r_true_labels_lr1_seed0"]["learning_rates"] == "0.1"
