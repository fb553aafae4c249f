"""How fast does it memorize? JAX (one member, E members per strategy) against PyTorch
(typical and optimized) on the same data and hyperparameters, in one invocation.

    python benchmarks/memorization.py --json=benchmarks/memorization.json
    python benchmarks/memorization.py --data=data/cifar10-jpeg.tar.gz --num_train=50000 ...

Random labels; train until 100% train accuracy (full training set, eval mode) or
--max_epochs. Reported per entry: time to memorize (training time only: compilation and
evaluation excluded; every epoch counts on both sides, the first one included -- JAX's
compilation, ahead of time, and torch.compile's are left out and reported apart), the final
train accuracy, examples/s over those epochs, the ratios to the *fastest* PyTorch form of
the run (typical, optimized, expert), model FLOPs per training example (counted from the
jaxpr of one step: models/flops.py), and the achieved FLOP/s against the measured
matrix-multiply peak of the same device and compute dtype (MFU).
PyTorch entries are skipped when torch is not installed (pip install -e '.[torch]').
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import host  # noqa: E402
from record import write_result  # noqa: E402

from rethinking_jax import data, models  # noqa: E402
from rethinking_jax.configs import default  # noqa: E402
from rethinking_jax.engine import assemble  # noqa: E402
from rethinking_jax.models import flops  # noqa: E402


def matmul_peak_gflops(n: int | None = None, repeats: int = 10, dtype=jnp.float32) -> float:
  """The device's FLOP/s on a square matrix product of the compute dtype: n = 8192 on an
  accelerator (2048^3 is too small to fill a GPU), 2048 on a CPU."""
  n = n or (2048 if jax.devices()[0].platform == "cpu" else 8192)
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  f = jax.jit(lambda a: a @ a)
  jax.block_until_ready(f(a))
  start = time.perf_counter()
  for _ in range(repeats):
    out = f(a)
  jax.block_until_ready(out)
  return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def train_flops_per_example(model_name: str, input_shape, batch: int = 128) -> float:
  """Matrix-product and convolution FLOPs of one SGD step per example, counted from its
  jaxpr (models/flops.py: XLA's GPU cost analysis counts no cuDNN convolution)."""
  return flops.train_flops_per_example(models.build(model_name), input_shape, batch)


def dataset(args):
  if args.data:
    ds = data.load("image_folder", data_dir=args.data, class_order="cifar10")
    images = ds.subset(args.num_train).train_images  # the images the JAX runs train on
    return images, "cifar10-jpeg" if "jpeg" in args.data else "folder"
  ds = data.load("synthetic", synthetic_train=args.num_train, synthetic_test=16)
  return ds.train_images, "synthetic"


def jax_entry(args, model, members, strategy, images_name):
  c = default.get_config()
  if args.data:
    c.dataset, c.data_dir, c.class_order = "image_folder", args.data, "cifar10"
  else:
    c.dataset = "synthetic"
  c.synthetic_train, c.synthetic_test, c.num_train = args.num_train, 16, args.num_train
  c.num_test = 16
  c.model, c.member_strategy, c.batch_size = model, strategy, args.batch_size
  c.randomizations, c.seeds = "random_labels", ",".join(str(s) for s in range(members))
  c.learning_rate, c.lr_decay_rate = args.lr, args.lr_decay
  c.num_epochs, c.eval_every_epochs, c.progress = args.max_epochs, 1, False
  c.compute_dtype, c.conv_impl = args.dtype, args.conv_impl
  run = assemble.prepare(c)
  result = run.fit()
  memorized = all(st.steps_to_memorize is not None for st in result.status)
  final = [r["train_acc"] for r in result.history if r["step"] == result.progress.step]
  steps_per_epoch = run.programs.spec.steps_per_epoch
  picked = run.programs.strategy  # `auto` resolved
  form = strategy if picked == strategy else f"{strategy} ({picked})"
  return {"framework": "jax", "form": f"{members} member(s), {form}", "model": model,
          "members": members, "strategy": picked, "step_loop": run.programs.step_loop,
          "memorized": memorized, "epochs": result.epochs,
          "final_train_acc": min(final) if final else None,  # the worst member's
          "time_to_memorize": result.train_seconds,
          "compile_seconds": result.compile_seconds,
          "examples_per_second": result.epochs * steps_per_epoch * args.batch_size * members
          / max(result.train_seconds, 1e-9), "data": images_name}


def torch_entry(args, model, form, images, images_name):
  import torch_reference

  labels = np.random.default_rng(0).integers(0, 10, len(images)).astype(np.int64)
  r = torch_reference.train_to_memorize(form, model, images, labels,
                                        batch_size=args.batch_size, lr=args.lr,
                                        lr_decay=args.lr_decay, max_epochs=args.max_epochs,
                                        compile_model=args.torch_compile
                                        and form in ("optimized", "expert"),
                                        bfloat16=args.dtype == "bfloat16",
                                        threads=args.threads or None)
  return {"framework": "torch", "members": 1, "data": images_name,
          "compile_seconds": r.pop("warmup_seconds"), **r,
          "form": f"{form}{' + compile' if args.torch_compile and form != 'typical' else ''}"}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--models", default="mlp_1x512")
  p.add_argument("--data", default="", help="an image folder/archive (CIFAR-10 JPEG); "
                 "default: CIFAR-shaped synthetic data")
  p.add_argument("--num_train", type=int, default=2048)
  p.add_argument("--members", default="8", help="comma-separated E for the ensemble entries")
  p.add_argument("--strategies", default="vmap,map,sequential")
  p.add_argument("--torch_forms", default="typical,optimized,expert")
  p.add_argument("--torch_compile", action="store_true")
  p.add_argument("--batch_size", type=int, default=128)
  p.add_argument("--lr", type=float, default=0.1)
  p.add_argument("--lr_decay", type=float, default=1.0)
  p.add_argument("--max_epochs", type=int, default=60)
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  p.add_argument("--json", default="")
  host.add_flags(p)
  a = p.parse_args(argv)
  setting = host.configure(a.threads, a.pin, a.conv_impl)  # before the first computation
  images, images_name = dataset(a)
  peak = matmul_peak_gflops(dtype=jnp.bfloat16 if a.dtype == "bfloat16" else jnp.float32)
  have_torch = importlib.util.find_spec("torch") is not None
  rows = []
  for model in a.models.split(","):
    crop = 28 if min(images.shape[1:3]) > 28 else min(images.shape[1:3])
    flops = train_flops_per_example(model, (crop, crop, images.shape[-1]))
    entries = [lambda model=model: jax_entry(a, model, 1, "sequential", images_name)]
    for e in (int(v) for v in a.members.split(",") if v and int(v) > 1):
      for s in a.strategies.split(","):
        entries.append(lambda model=model, e=e, s=s: jax_entry(a, model, e, s, images_name))
    for form in a.torch_forms.split(",") if have_torch else []:
      if form:
        entries.append(lambda model=model, form=form: torch_entry(a, model, form, images,
                                                                  images_name))
    model_rows = []
    for entry in entries:
      load_start = host.loadavg()
      row = entry()
      row.update(setting, loadavg_start=load_start, loadavg_end=host.loadavg())
      row["flops_per_example"] = flops
      row["mfu"] = row["examples_per_second"] * flops / (peak * 1e9)
      model_rows.append(row)
      write_result(a.json, "memorization", a, rows + model_rows, matmul_peak_gflops=peak,
                   partial=True)  # what a part killed by its time limit still reports
      print(f"{model:14s} {row['framework']:5s} {row['form']:28s} "
            f"memorized={row['memorized']!s:5s} epochs={row['epochs']:3d} "
            f"train_acc={100 * (row['final_train_acc'] or 0):6.2f}% "
            f"time={row['time_to_memorize']:8.2f}s ex/s={row['examples_per_second']:9.0f} "
            f"MFU={100 * row['mfu']:5.1f}% compile={row['compile_seconds']:5.1f}s", flush=True)
    # every ratio against the fastest PyTorch form of this run (steady examples/s)
    torch_rows = [r for r in model_rows if r["framework"] == "torch"]
    reference = max(torch_rows, key=lambda r: r["examples_per_second"], default=None)
    for row in model_rows:
      row["torch_reference_form"] = reference["form"] if reference else None
      row["throughput_vs_torch_fastest"] = (
          row["examples_per_second"] / reference["examples_per_second"] if reference else None)
      row["warning"] = ("under 5 s of timed work" if row["time_to_memorize"] < 5.0 else None)
      row["time_vs_torch_fastest"] = (row["time_to_memorize"] / reference["time_to_memorize"]
                                      if reference else None)
    rows += model_rows
  print(f"matrix-multiply peak: {peak:.0f} GFLOP/s ({a.dtype})")
  if not have_torch:
    print("torch is not installed: PyTorch entries skipped (pip install -e '.[torch]')")
  for row in rows:
    if row["throughput_vs_torch_fastest"] is not None:
      print(f"{row['model']:14s} {row['framework']:5s} {row['form']:28s} examples/s vs the "
            f"fastest PyTorch form ({row['torch_reference_form']}): "
            f"{row['throughput_vs_torch_fastest']:.2f}x")
  return write_result(a.json, "memorization", a, rows, matmul_peak_gflops=peak, partial=False,
                      torch=__import__("torch").__version__ if have_torch else None)


if __name__ == "__main__":
  main()
