"""The theory experiments behind configs/theorem1.py, table3.py and min_norm_sgd.py.

Each writes summary.json and report.md (min_norm_sgd also a figure) into the workdir.
"""

from __future__ import annotations

import os
import shutil
import time

import jax
import numpy as np

from rethinking_jax import data
from rethinking_jax.base.errors import unknown_name
from rethinking_jax.base.stop_signals import StopSignals
from rethinking_jax.reports import files
from rethinking_jax.theory import expressivity, features, gram_stream, kernels, min_norm_sgd

EXPERIMENTS = ("theorem1", "table3", "min_norm_sgd")
# random_conv: Gaussian filters on whitened images (this project's first reading of "a random
# convolutional neural net"); random_patches: the Coates-Ng recipe of KeystoneML's
# RandomPatchCifar (features.PatchFeatureBlocks), never held whole: its linear Gram matrices
# are summed over filter blocks and saved after each (gram_stream), so the paper's scale runs
# as a resumable job.
FEATURES = ("raw", "whitened", "gabor", "random_conv", "random_patches")


def _write(workdir, summary, lines):
  os.makedirs(workdir, exist_ok=True)
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  files.write_text(os.path.join(workdir, "report.md"), "\n".join(lines) + "\n")


def _hardware() -> str:
  d = jax.devices()[0]
  return f"{jax.device_count()} × {d.device_kind} ({d.platform})"


def theorem1(config, workdir: str) -> dict:
  n, shape = config.theorem1_n, tuple(config.theorem1_shape)
  rng = np.random.default_rng(config.theorem1_seed)
  z = rng.standard_normal((n, *shape))
  y = rng.integers(0, 10, n).astype(np.float64)  # random labels, fitted as real targets
  start = time.perf_counter()
  net = expressivity.construct(z, y, config.theorem1_seed)
  seconds = time.perf_counter() - start
  outputs = expressivity.evaluate(net, z)
  err = float(np.max(np.abs(outputs - y)))
  recovered = float(np.mean(np.round(outputs) == y))
  d = int(np.prod(shape))
  rows = [{"depth": 2, "width": n, "params": net.num_params, "max_error": err,
           "labels_recovered": recovered, "seconds": seconds}]
  for depth in config.theorem1_depths:
    layers, nonzero = expressivity.construct_deep(z, y, depth, config.theorem1_seed)
    rows.append({"depth": depth + 1, "width": max(int(w.shape[1]) for w, _ in layers),
                 "params": nonzero,
                 "max_error": float(np.max(np.abs(expressivity.evaluate_deep(layers, z) - y)))})
  summary = {"n": n, "d": d, "two_n_plus_d": 2 * n + d, "min_gap": net.min_gap, "rows": rows}
  lines = ["# Theorem 1 — finite-sample expressivity", "",
           f"{n:,} random Gaussian points of shape {'×'.join(map(str, shape))} (d = {d:,}), "
           f"random labels in 0..9, float64, on {_hardware()}.", "",
           f"Depth 2: **{net.num_params:,} weights = 2n + d = {2 * n + d:,}**; maximum fitting "
           f"error **{err:.3g}** (labels recovered by rounding the output: "
           f"{100 * recovered:.2f}%); smallest gap between sorted projections "
           f"{net.min_gap:.3g} (the conditioning: the weights grow like 1/gap, and the float64 "
           "error with them). Construction time "
           f"{seconds:.2f} s.", "",
           "| depth | width | weights (nonzero) | max fitting error |", "|---:|---:|---:|---:|"]
  lines += [f"| {r['depth']} | {r['width']:,} | {r['params']:,} | {r['max_error']:.3g} |"
            for r in rows]
  lines += ["", "Depth = hidden layers + 1. Deeper rows: the corollary's construction — "
            "k hidden layers of width ⌈n/(k−1)⌉ + 3 (a carried projection and the running sum "
            "as two ReLUs), O(n + d) nonzero weights."]
  _write(workdir, summary, lines)
  return summary


def _features(name, train_u8, test_u8, config):
  """(train, test) features of kind `name`, each split featurized on its own."""
  return _split_features(name, train_u8, config), _split_features(name, test_u8, config)


def _split_features(name, images_u8, config):
  if name == "raw":
    return features.images_to_unit(images_u8).reshape(len(images_u8), -1)
  if name == "whitened":
    return features.whitened_pixels(images_u8, config.crop_size)
  if name == "gabor":
    return features.gabor_features(features.images_to_unit(images_u8)[..., :1],
                                   pool_grid=config.gabor_pool_grid)
  if name == "random_conv":
    x = features.whitened_pixels(images_u8, config.crop_size)
    size = int(np.sqrt(x.shape[1] // images_u8.shape[-1]))
    return features.random_conv_features(
        x.reshape(len(x), size, size, images_u8.shape[-1]), config.num_filters,
        config.filter_size, config.pool_grid, config.seeds_first)
  raise unknown_name("features", name, FEATURES)


def _peak_memory_gb() -> float:
  import resource

  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _patch_grams(row, ds, config, dtype, folder: str):
  """The random-patch rows' Gram matrices (K, K(test, train)), summed over filter blocks and
  resumed from / saved to `folder` after each block (gram_stream)."""
  size, filter_block = row.get("patch_size", 6), row.get("filter_block", 1024)
  blocks = features.PatchFeatureBlocks(ds.train_images, ds.test_images, row.num_filters, size,
                                       config.seeds_first, filter_batch=filter_block)
  source = {"dataset": ds.name, "num_train": len(ds.train_images),
            "num_test": len(ds.test_images), "num_filters": row.num_filters,
            "patch_size": size, "seed": config.seeds_first, "filter_block": filter_block,
            "dtype": np.dtype(dtype).name}
  with StopSignals(lambda: "now: the filter block in progress is dropped, the blocks before "
                   f"it are saved in {folder}") as signals:
    grams = gram_stream.accumulate(blocks.block, blocks.num_blocks, len(ds.train_images),
                                   len(ds.test_images), dtype, folder, source,
                                   stop=lambda: signals.received is not None)
  return grams, blocks.num_blocks


def _fresh_k(grams, folder: str):
  """make_k for a row's factorization (which consumes K): the summed K itself for the first
  row, a copy read back from `folder` for any later one or a retry with a jitter."""
  fresh = [grams.train] if grams.train is not None else []
  grams.train = None
  return lambda: fresh.pop() if fresh else gram_stream.train_gram(folder)


def table3(config, workdir: str) -> dict:
  """Every row of Table 3; rows on the same data and features share them (a row may take
  its own `num_train` subset and `num_filters`). The random-patch rows share their Gram
  matrices, kept in workdir/checkpoints/ until the table is written."""
  rows, datasets, featurized, gram_folders = [], {}, {}, set()
  for name, row in config.table3_rows.items():
    num_train = row.get("num_train", 0) or config.num_train
    key = (row.dataset, num_train)
    if key not in datasets:
      datasets[key] = data.load(row.dataset, data_dir=config.data_dir or None,
                                synthetic_shape=config.synthetic_shape,
                                class_order=config.get("class_order", ""),
                                cache_dir=config.get("cache_dir", "")).subset(
                                    num_train, config.num_test)
    ds = datasets[key]
    start = time.perf_counter()
    dtype = np.float64 if row.get("float64", config.kernel_float64) else np.float32
    fkey = (key, row.features, row.get("num_filters", 0), row.get("patch_size", 0))
    extra = {}
    if row.features == "random_patches":
      folder = os.path.join(workdir, "checkpoints", "gram_" + "_".join(map(str, fkey[1:])))
      gram_folders.add(folder)
      if fkey not in featurized:
        featurized.clear()  # one feature set (here: Gram pair) in memory at a time
        featurized[fkey] = _patch_grams(row, ds, config, dtype, folder)
      grams, num_blocks = featurized[fkey]
      result = kernels.fit_and_evaluate_grams(
          _fresh_k(grams, folder), lambda k_test=grams.test: k_test, ds.train_labels,
          ds.test_labels, ds.num_classes, row.l2, dtype=dtype)
      result["kernel"], result["bandwidth"] = "linear", None
      dim, extra = 8 * row.num_filters, {"filter_blocks": num_blocks}
    else:
      if fkey not in featurized:
        row_config = dict(config.items())
        if row.get("num_filters"):  # a row's own featurizer setting
          row_config["num_filters"] = row.num_filters
        row_config = type(config)(row_config)
        featurized.clear()  # one feature set in memory at a time
        featurized[fkey] = _features(row.features, ds.train_images, ds.test_images,
                                     row_config)
      x_train, x_test = featurized[fkey]
      result = kernels.fit_and_evaluate(
          x_train, ds.train_labels, x_test, ds.test_labels, ds.num_classes, row.kernel,
          l2=row.l2, dtype=dtype)
      dim = int(x_train.shape[1])
    rows.append({"row": name, "dataset": ds.name, "features": row.features, "dim": dim,
                 **result, **extra, "paper_error": row.paper_error,
                 "seconds": time.perf_counter() - start,
                 "peak_memory_gb": round(_peak_memory_gb(), 2)})
  smoke = "> **Smoke run** on stand-in data: not the paper's experiment.\n" if config.smoke else ""
  lines = ["# Table 3 — minimum-norm interpolation with kernels", "", smoke,
           f"Hardware: {_hardware()}. Train/test sizes per row below; one-hot targets, "
           "K A = Y solved exactly (l2 = 0) or with l2, prediction = argmax; Gaussian "
           "bandwidth = median pairwise distance.", "",
           "| row | dataset | features (dim) | kernel | l2 | n train | train err % | test err % "
           "| paper test err % | mean ‖w‖ per class | precision | seconds | peak GB |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
  for r in rows:
    paper = "—" if r["paper_error"] is None else f"{r['paper_error']:.1f}"
    precision = r["dtype"] + (f", jitter {r['jitter']:.0e}" if r["jitter"] else "")
    lines.append(f"| {r['row']} | {r['dataset']} | {r['features']} ({r['dim']:,}) | "
                 f"{r['kernel']} | {r['l2']:g} | {r['num_train']:,} | "
                 f"{100 * r['train_error']:.2f} | {100 * r['test_error']:.2f} | {paper} | "
                 f"{r['norm_mean']:.1f} | {precision} | {r['seconds']:.0f} | "
                 f"{r['peak_memory_gb']:.1f} |")
  lines += ["", "A linear kernel interpolates only when the feature dimension is at least the "
            "number of training points (train error 0); below that K is singular."]
  streamed = [r for r in rows if "filter_blocks" in r]
  if streamed:
    lines += ["", f"The random-patch rows ({', '.join(r['row'] for r in streamed)}) never hold "
              "their feature map: K and K(test, train) are summed over "
              f"{streamed[0]['filter_blocks']} filter blocks, saved after each (a stopped run "
              "resumes from the last), computed once for the rows that share them (the first "
              "such row's seconds include them); only K's lower triangle is summed."]
  summary = {"rows": rows, "smoke": bool(config.smoke)}
  _write(workdir, summary, lines)
  for folder in gram_folders:  # the table is written: the partial sums are no longer needed
    shutil.rmtree(folder, ignore_errors=True)
  return summary


def sgd(config, workdir: str) -> dict:
  from rethinking_jax.reports.style import plt

  r = min_norm_sgd.experiment(config.sgd_n, config.sgd_d, config.sgd_epochs, config.sgd_lr,
                              config.theorem1_seed)
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for name in ("from_zero", "from_random"):
    ax.semilogy(r[name]["epochs"], r[name]["relative_distance_to_pinv"],
                label=f"{name.replace('_', ' ')}: distance to pseudo-inverse solution")
  ax.semilogy(r["from_random"]["epochs"], r["from_random"]["relative_distance_to_limit"], "--",
              label="from random: distance to w0 projected onto the interpolants")
  ax.set(xlabel="SGD epochs", ylabel="relative distance", title="SGD on an under-determined "
         f"least-squares problem (n={r['n']}, d={r['d']})")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  os.makedirs(workdir, exist_ok=True)
  files.save_figure(fig, os.path.join(workdir, "min_norm_sgd.png"), dpi=110)
  plt.close(fig)
  z, q = r["from_zero"], r["from_random"]
  lines = ["# SGD finds the minimum-norm solution", "",
           f"Linear least squares, n = {r['n']} points in d = {r['d']} dimensions, plain SGD "
           f"(lr {r['lr']}, one example per step, {r['epochs']} epochs), float64.", "",
           "| start | final residual ‖Xw − y‖ | ‖w‖ | relative distance to X⁺y |",
           "|---|---:|---:|---:|",
           f"| w0 = 0 | {z['train_residual']:.2e} | {z['norm']:.4f} | "
           f"{z['relative_distance_to_pinv'][-1]:.2e} |",
           f"| w0 random | {q['train_residual']:.2e} | {q['norm']:.4f} | "
           f"{q['relative_distance_to_pinv'][-1]:.2e} |", "",
           f"‖X⁺y‖ = {r['pinv_norm']:.4f}. From zero, SGD converges to the pseudo-inverse "
           "(minimum-norm) interpolant; from a random start it converges to another "
           "interpolant — w0 projected onto the affine set of solutions "
           f"(relative distance {q['relative_distance_to_limit'][-1]:.2e}) — whose norm is "
           "larger. ![curves](min_norm_sgd.png)"]
  _write(workdir, r, lines)
  return r


def run(config, workdir: str) -> dict:
  runners = {"theorem1": theorem1, "table3": table3, "min_norm_sgd": sgd}
  if config.experiment not in runners:
    raise unknown_name("experiment", config.experiment, ("train", "fooling", *EXPERIMENTS))
  return runners[config.experiment](config, workdir)
