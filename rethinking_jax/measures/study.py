"""Measures of every member of a run (from its checkpoints) and the report that sets them
against the generalization gap."""

from __future__ import annotations

import csv
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import scipy.stats

from rethinking_jax import data, models
from rethinking_jax.base.errors import UserError
from rethinking_jax.engine import assemble, checkpoints, program
from rethinking_jax.engine import members as members_lib
from rethinking_jax.measures import complexity
from rethinking_jax.reports import files
from rethinking_jax.reports.style import plt

# name -> (what it is, higher means "more complex" in the measure's own reading)
MEASURES = {
    "param_l2": "parameter l2 norm",
    "frobenius_sum": "sum of the weights' Frobenius norms",
    "frobenius_product": "product of the weights' Frobenius norms",
    "spectral_product": "product of the weights' spectral norms",
    "spectral_complexity": "spectral complexity R (Bartlett et al.)",
    "path_l2": "path-l2 norm (MLPs)",
    "distance_from_init": "distance from initialization",
    "margin_p10": "10th percentile of the training margins",
    "normalized_margin_p10": "10th percentile margin / spectral complexity",
    "hessian_max_eig": "largest Hessian eigenvalue of the training loss",
    "perturbed_loss_increase": "loss increase, random 1% weight perturbation",
}


def _member(tree, m):
  return jax.tree.map(lambda x: x[m], tree)


def member_measures(spec, variables, init_params, x, y, convolutional: bool) -> dict:
  """Every measure of one member (its variables), on its training examples (x, y)."""
  params = variables["params"]
  others = {k: v for k, v in variables.items() if k != "params"}
  apply = jax.jit(lambda p, xs: spec.model.apply({**others, "params": p}, xs))
  loss = jax.jit(lambda p: jnp.mean(program.cross_entropy(apply(p, x), y)))
  logits = np.asarray(apply(params, x))
  margin = complexity.margins(logits, np.asarray(y))
  frobenius = complexity.frobenius_norms(params)
  spectral = complexity.spectral_norms(params)
  r_bartlett = complexity.spectral_complexity(params)
  return {
      "param_l2": complexity.parameter_l2(params),
      "frobenius_sum": float(np.sum(frobenius)),
      "frobenius_product": complexity.product(frobenius),
      "spectral_product": complexity.product(spectral),
      "spectral_complexity": r_bartlett,
      "path_l2": (None if convolutional
                  else complexity.path_l2(complexity.kernels(params))),
      "distance_from_init": complexity.distance(params, init_params),
      "margin_p10": float(np.percentile(margin, 10)),
      "normalized_margin_p10": float(np.percentile(margin, 10) / r_bartlett),
      "hessian_max_eig": complexity.hessian_max_eigenvalue(loss, params),
      "perturbed_loss_increase": complexity.perturbed_loss_increase(loss, params),
      "train_loss_on_subset": float(loss(params)),
  }


def measure_run(workdir: str, examples: int = 4096, which: str = "latest",
                say=lambda text: None) -> list[dict]:
  """One record per member and checkpoint: its measures beside its accuracies. `say(text)`
  hears what is being done (the command line prints it: a long job is never silent)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"workdir: no config.json in {workdir}; give a run's workdir (a suite's "
                    "runs are its sub-directories)")
  with open(path) as f:
    config_dict = json.load(f)
  if config_dict.get("runs"):
    raise UserError(f"workdir: {workdir} is a suite; give one of its runs, e.g. "
                    f"{os.path.join(workdir, next(iter(config_dict['runs'])))}")
  config = ml_collections.ConfigDict(config_dict)
  say(f"reading the data of {workdir} ({config.dataset}, {config.model})")
  run = assemble.prepare(config)
  if run.inputs.pipeline != "device":
    raise UserError("workdir: measures need the in-memory input path (not a streamed run)")
  spec = run.programs.spec
  init = run.programs.init(run.members)
  checkpointer = checkpoints.RunCheckpointer(workdir, keep=config.checkpoints_to_keep)
  abstract = run.programs.abstract_state(run.members)
  steps = sorted(checkpointer.manager.all_steps())
  if not steps:
    raise UserError(f"workdir: no checkpoints in {workdir}; train the run first")
  steps = steps if which == "all" else steps[-1:]
  index = jnp.asarray(data.subset_indices(run.dataset.num_train, examples))
  metrics = {(r["step"], r["member"]): r
             for r in files.read_jsonl(os.path.join(workdir, "metrics.jsonl"))}
  out = []
  for step in steps:
    say(f"restoring the checkpoint at step {step}; measuring {len(run.specs)} members on "
        f"{len(index)} training examples (the first also compiles)")
    state, meta = checkpointer.restore_at(step, abstract)
    for m, member_spec in enumerate(run.specs):
      start = time.perf_counter()
      member = _member(run.members, m)
      x, y = program.member_examples(spec, member, _member(run.inputs.labels, m),
                                     run.inputs.data, index)
      variables = {"params": _member(state.params, m),
                   **({"batch_stats": _member(state.batch_stats, m)}
                      if state.batch_stats else {})}
      values = member_measures(spec, variables, _member(init.params, m), x, y,
                               models.record(config.model).convolutional)
      record = metrics.get((step, m), {})
      out.append({"step": step, **members_lib.describe(m, member_spec),
                  "train_acc": record.get("train_acc"), "test_acc": record.get("test_acc"),
                  "gap": (None if record.get("train_acc") is None
                          or record.get("test_acc") is None
                          else record["train_acc"] - record["test_acc"]),
                  **values, "seconds": round(time.perf_counter() - start, 2)})
      say(f"  step {step}, member {m} ({member_spec.label}): {out[-1]['seconds']:.1f} s")
  checkpointer.close()
  return out


def rank_correlations(rows: list[dict], target: str = "gap") -> dict:
  """{measure: Kendall's tau with `target` across the rows (None when undefined)}."""
  out = {}
  for name in MEASURES:
    pairs = [(r[name], r[target]) for r in rows
             if r.get(name) is not None and r.get(target) is not None]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
      out[name] = None
      continue
    tau = scipy.stats.kendalltau(*zip(*pairs, strict=True)).statistic
    out[name] = None if np.isnan(tau) else float(tau)
  return out


def write_report(workdir: str, rows: list[dict], examples: int) -> str:
  out_dir = os.path.join(workdir, "measures")
  os.makedirs(out_dir, exist_ok=True)
  last = max(r["step"] for r in rows)
  final = [r for r in rows if r["step"] == last]
  tau_gap, tau_err = rank_correlations(final, "gap"), rank_correlations(
      [{**r, "test_error": None if r["test_acc"] is None else 1 - r["test_acc"]}
       for r in final], "test_error")
  files.write_json(os.path.join(out_dir, "measures.json"),
                   {"rows": rows, "kendall_tau_with_gap": tau_gap,
                    "kendall_tau_with_test_error": tau_err, "examples": examples})
  with files.atomic_path(os.path.join(out_dir, "measures.csv")) as tmp, open(
      tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  names = [n for n in MEASURES if any(r[n] is not None for r in final)]
  cols = 4
  fig, axes = plt.subplots(-(-len(names) // cols), cols, figsize=(4.2 * cols,
                                                                  3.4 * -(-len(names) // cols)),
                           squeeze=False)
  colours = [r["corruption_p"] for r in final]
  for ax, name in zip(axes.flat, names, strict=False):
    xs = [r[name] for r in final]
    ys = [None if r["test_acc"] is None else 100 * (1 - r["test_acc"]) for r in final]
    sc = ax.scatter(xs, ys, c=colours, cmap="viridis", vmin=0, vmax=1, s=28)
    ax.set(xlabel=name, ylabel="test error %",
           title=f"tau(gap) = {tau_gap[name]:+.2f}" if tau_gap[name] is not None else "")
    if name in ("frobenius_product", "spectral_product", "spectral_complexity"):
      ax.set_xscale("log")
    ax.grid(alpha=0.3)
  for ax in list(axes.flat)[len(names):]:
    ax.axis("off")
  fig.colorbar(sc, ax=axes, label="label corruption p", shrink=0.6)
  files.save_figure(fig, os.path.join(out_dir, "measures.png"), dpi=100)
  plt.close(fig)
  lines = [f"# Complexity measures of {os.path.basename(os.path.normpath(workdir))}", "",
           f"{len(final)} members at step {last}; margins and sharpness on a fixed random "
           f"{examples:,} of each member's training examples (its own labels and inputs, "
           "eval mode). Kendall's tau across members: does the measure rank the members as "
           "their generalization gap (train − test accuracy) and their test error do?", "",
           "| measure | tau with gap | tau with test error |", "|---|---:|---:|"]
  for name in names:
    fmt = lambda t: "—" if t is None else f"{t:+.2f}"
    lines.append(f"| {MEASURES[name]} (`{name}`) | {fmt(tau_gap[name])} | "
                 f"{fmt(tau_err[name])} |")
  lines += ["", "Per member:", "", "| member | p | train % | test % | " + " | ".join(names)
            + " |", "|---|---:|---:|---:|" + "---:|" * len(names)]
  for r in final:
    pct = lambda v: "—" if v is None else f"{100 * v:.1f}"
    lines.append(f"| {r['label']} | {r['corruption_p']:g} | {pct(r['train_acc'])} | "
                 f"{pct(r['test_acc'])} | " + " | ".join(
                     "—" if r[n] is None else f"{r[n]:.3g}" for n in names) + " |")
  lines += ["", "![measures](measures.png)", "", "CSV: `measures.csv` (every member at every "
            "measured checkpoint).", ""]
  path = os.path.join(out_dir, "report.md")
  files.write_text(path, "\n".join(lines))
  return path
