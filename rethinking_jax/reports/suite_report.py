"""The combined report of a suite workdir: what every study's report shares (its runs read
back, the header with the dataset, hardware and each deviation from the paper, the runs
table); each study writes its own section (rethinking_jax/studies).

A smoke run says loudly that it is not the paper's experiment.
"""

from __future__ import annotations

import csv
import json
import os

import ml_collections

from rethinking_jax.engine import loop
from rethinking_jax.engine import members as members_lib
from rethinking_jax.reports import files, protocol


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def load_suite(workdir: str) -> tuple[dict, dict]:
  """(suite config, {run name: {config, summary, metrics, finished}}) for the runs that
  finished, and for those stopped on the way (a time limit, a signal) with what they
  reached: their summary is provisional, built from their last evaluation point."""
  config = _read_json(os.path.join(workdir, "config.json"))
  runs = {}
  for name in config.get("runs", {}):
    sub = os.path.join(workdir, name)
    paths = {k: os.path.join(sub, f) for k, f in (("config", "config.json"),
                                                  ("summary", "summary.json"),
                                                  ("metrics", "metrics.jsonl"))}
    if not (os.path.exists(paths["config"]) and os.path.exists(paths["metrics"])):
      continue
    run_config = _read_json(paths["config"])
    metrics = files.read_jsonl(paths["metrics"])
    finished = os.path.exists(paths["summary"])
    if not finished and not metrics:
      continue
    summary = (_read_json(paths["summary"]) if finished
               else provisional_summary(name, run_config, metrics))
    runs[name] = {"config": run_config, "summary": summary, "metrics": metrics,
                  "finished": finished}
  return config, runs


def provisional_summary(name: str, run_config: dict, metrics: list[dict]) -> dict:
  """A summary of an unfinished run from its metrics: each member's last evaluation, the
  members' settings from the run's config (the same resolution the engine uses)."""
  specs = members_lib.from_config(ml_collections.ConfigDict(run_config))
  threshold = run_config.get("memorize_threshold", 1.0)
  members = []
  for m, spec in enumerate(specs):
    records = [r for r in metrics if r["member"] == m]
    last = records[-1] if records else {}
    reached = [r for r in records if (r["train_acc"] or 0) >= threshold]
    tests = [r["test_acc"] for r in records if r["test_acc"] is not None]
    members.append(loop.member_summary(
        m, spec, last, max(tests) if tests else None,
        reached[0]["step"] if reached else None, reached[0]["epoch"] if reached else None,
        bool(records) and last.get("train_loss") is None))
  epoch = max((r["epoch"] for r in metrics), default=0)
  return {"run": {"name": name, "model": run_config["model"], "epochs": epoch,
                  "stop": "unfinished",
                  "stop_reason": f"not finished: stopped at epoch {epoch}",
                  "wall_seconds": max((r.get("wall_time", 0) for r in metrics), default=0)},
          "members": members}


def members(runs: dict):
  """Every member of every run, with the run's model and transform attached."""
  for name, run in runs.items():
    for m in run["summary"]["members"]:
      yield {**m, "run": name, "model": run["config"]["model"],
             "transform": run["config"]["train_transform"],
             "dropout": run["config"].get("dropout_rate", 0.0) > 0}


def find_all(runs, model, transform=None, randomization=None, decayed=None, p=None,
             dropout=None) -> list[dict]:
  """Every member that trained a row of a paper table: one per seed."""
  return [m for m in members(runs)
          if (m["model"] == model and (transform is None or m["transform"] == transform)
              and (randomization is None or m["randomization"] == randomization)
              and (decayed is None or (m["weight_decay"] > 0) == decayed)
              and (p is None or abs(m["corruption_p"] - p) < 1e-9)
              and (dropout is None or m["dropout"] == dropout))]


PAPER_DATASET_NAMES = {"cifar10": "CIFAR10", "imagenet2012": "ImageNet (imagenet2012)"}


def header(title: str, config: dict, runs: dict, study=None) -> list[str]:
  """The title, the dataset and hardware actually used, and every deviation from the paper
  (`study`: the paper result the suite reproduces, None for an ad-hoc suite)."""
  lines = [f"# {title}", ""]
  if config.get("smoke"):
    lines += ["> **Smoke run** on a tiny synthetic stand-in: it checks that the suite runs end "
              "to end. Its numbers say nothing about the paper's experiment.", ""]
  done = [run for run in runs.values() if run["finished"]]
  unfinished = [name for name, run in runs.items() if not run["finished"]]
  if not runs:
    return lines + ["No run has finished yet.", ""]
  deviations = []
  if done:
    first = done[0]["summary"]["run"]
    dataset = first["dataset"]
    shown = ("CIFAR-10 (JPEG re-encoding)" if "cifar10" in dataset and "jpeg" in dataset
             else dataset)
    lines.append(f"Dataset: **{shown}**, "
                 f"{first['num_train']:,} train / {first['num_test']:,} test examples. "
                 f"Hardware: {first['devices']} × {first['device']} ({first['platform']}"
                 f"{', ' + first['cpu'] if first.get('cpu') else ''}), "
                 f"{first['processes']} process(es).")
    expected = study.dataset if study else "cifar10"
    cifar_jpeg = shown == "CIFAR-10 (JPEG re-encoding)"
    if cifar_jpeg and expected == "cifar10":
      deviations.append("images are a JPEG (quality 75) re-encoding of CIFAR-10, not the "
                        "original release: pixel values differ slightly")
    elif (expected != "cifar10" and shown != expected) or (not cifar_jpeg
                                                            and dataset != expected):
      deviations.append(f"dataset is {shown}, not the paper's {PAPER_DATASET_NAMES[expected]}")
    batch = done[0]["config"].get("batch_size", 128)
    if first["num_train"] % batch:
      deviations.append(
          f"an epoch is {first['num_train'] // batch:,} steps of {batch}: each epoch's last "
          f"partial batch ({first['num_train'] % batch} images) is dropped (a fresh "
          "permutation every epoch, so every image is still seen; the paper does not say)")
    evaluated = first.get("train_eval_examples", first["num_train"])
    if evaluated < first["num_train"]:
      deviations.append(f"train accuracy is measured on a fixed random {evaluated:,} of the "
                        f"{first['num_train']:,} training images at each evaluation")
  else:
    lines.append(f"No run has finished yet; stopped on the way: {', '.join(unfinished)} "
                 "(their last evaluation is shown).")
  deviations += [f"`{name}` did not finish (a time limit or a signal stopped it at epoch "
                 f"{runs[name]['summary']['run']['epochs']}): its numbers are from there"
                 for name in unfinished]
  for name, run in runs.items():
    s = run["summary"]
    memorizing = study.memorizes if study else True
    diverged = [m["label"] for m in s["members"] if m.get("diverged")]
    if diverged:
      deviations.append(f"`{name}`: {', '.join(diverged)} diverged (training loss NaN/inf)")
    if memorizing and run["finished"]:
      open_members = [m["label"] for m in s["members"]
                      if m["steps_to_memorize"] is None and not m.get("diverged")]
      if open_members:
        deviations.append(f"`{name}` stopped at {s['run']['epochs']} epochs "
                          f"({s['run']['wall_seconds']:.0f} s) before "
                          f"{', '.join(open_members)} reached 100% train accuracy")
    if s["run"].get("metrics_lines_lost"):
      deviations.append(f"`{name}`: {s['run']['metrics_lines_lost']} evaluation records were "
                        "lost from its metrics.jsonl before a resume (curves have a gap)")
  deviations += _protocol_deviations(study.protocol if study else protocol.cifar10, runs)
  missing = [n for n in config.get("runs", {}) if n not in runs]
  if missing:
    deviations.append(f"runs not finished yet: {', '.join(missing)}")
  lines.append("")
  lines += ["Deviations from the paper: " + ("; ".join(deviations) + "." if deviations
                                              else "none recorded."), ""]
  return lines


def _protocol_deviations(paper_protocol, runs) -> list[str]:
  """Every field in which the runs differ from the paper's protocol (config -> {field:
  value}); said once when all runs share it."""
  per_run = {name: protocol.differences(paper_protocol(run["config"]), run["config"],
                                        run["summary"])
             for name, run in runs.items()}
  shared = set.intersection(*map(set, per_run.values())) if per_run else set()
  out = []
  if shared:
    label = "every run" if len(per_run) > 1 else f"`{next(iter(per_run))}`"
    out.append(f"{label}: " + ", ".join(d for d in next(iter(per_run.values()))
                                         if d in shared))
  for name, diffs in per_run.items():
    own = [d for d in diffs if d not in shared]
    if own:
      out.append(f"`{name}`: {', '.join(own)}")
  return out


def write_csv(path, rows, fields):
  with files.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)


SEEDS_NOTE = ("Ours: the mean over a row's members that differ only in their seed, "
              "± the standard deviation (number of seeds); one value where one seed ran.")


def member_records(run, member: int) -> list[dict]:
  return [r for r in run["metrics"] if r["member"] == member]


def best(run, member: int, key: str):
  """The highest value of `key` a member reached at any evaluation (early stopping's)."""
  values = [r[key] for r in member_records(run, member) if r.get(key) is not None]
  return max(values) if values else None


def with_sources(workdir: str, runs: dict, sources) -> dict:
  """`runs` and the runs of other suite workdirs (`sources`), these named by their path
  from `workdir` (SOURCE/RUN, a link that works from workdir's report): one table or figure
  from members trained under one protocol in several places."""
  out = dict(runs)
  for source in sources:
    if not os.path.exists(os.path.join(source, "config.json")):
      raise ValueError(f"sources: {source} is not a suite's workdir (no config.json)")
    config, found = load_suite(source)
    if not config.get("runs"):
      raise ValueError(f"sources: {source} is not a suite's workdir (a single run's: its "
                       "config.json names no runs)")
    if not found:
      raise ValueError(f"sources: {source} holds no finished or started runs")
    prefix = os.path.relpath(source, workdir)
    out.update({f"{prefix}/{name}": run for name, run in found.items()})
  return out


def render(workdir: str, study_of=lambda report: None, sources=()) -> str:
  """Writes WORKDIR/report.md (and the study's CSV/PNG files) for a suite workdir; returns
  its path. `study_of`: the paper result (its title and section) a config's `report` names,
  None for an ad-hoc suite. `sources`: other suite workdirs whose runs join this one's
  (with_sources; the report names them and the command that draws it)."""
  config, runs = load_suite(workdir)
  runs = with_sources(workdir, runs, sources)
  study = study_of(config.get("report"))
  title = study.title if study else "Suite"
  lines = header(f"{title} — Zhang et al. (ICLR 2017), as run here", config, runs, study)
  if sources:
    lines += ["With the runs of " + ", ".join(f"`{s}`" for s in sources) + " (drawn by "
              f"`rethinking-jax report --workdir={workdir} --sources={','.join(sources)}`; "
              "the suite's own run rewrites this report without them).", ""]
  if study is not None and runs:
    lines += study.section(workdir, runs)
  lines += ["## Runs", "", "| run | model | members | epochs | stop | wall s |",
            "|---|---|---:|---:|---|---:|"]
  for name, run in runs.items():
    r = run["summary"]["run"]
    lines.append(f"| [{name}]({name}/report.md) | {r['model']} | "
                 f"{len(run['summary']['members'])} | {r['epochs']} | {r['stop_reason']} | "
                 f"{r['wall_seconds']:.1f} |")
  path = os.path.join(workdir, "report.md")
  files.write_text(path, "\n".join(lines) + "\n")
  return path
