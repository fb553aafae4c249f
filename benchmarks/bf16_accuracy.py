"""Does bfloat16 compute train the same members? A config trained twice, float32 and
bfloat16 (`compute_dtype`: activations and matrix products; parameters and the loss stay
float32), every member's final train and test accuracy side by side.

    python benchmarks/bf16_accuracy.py --config=configs/quickstart.py \
        --json=benchmarks/bf16_accuracy_quickstart.json
    python benchmarks/bf16_accuracy.py --config=configs/table1.py:mlp_1x512_center \
        --set=dataset=image_folder --set=data_dir=data/cifar10-jpeg.tar.gz \
        --set=class_order=cifar10 --set=num_epochs=20 ...

`--set=field=value` overrides a config field (a suite: every sub-run's); numbers are parsed
as numbers. The workdirs are temporary.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from record import write_result  # noqa: E402

from rethinking_jax.run import suite, train  # noqa: E402


def load_config(spec: str):
  path, _, arg = spec.partition(":")
  module = importlib.import_module(os.path.splitext(os.path.normpath(path))[0]
                                   .replace(os.sep, "."))
  return module.get_config(arg or None)


def parse_value(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def members_of(config, workdir: str) -> list[dict]:
  if suite.is_suite(config):
    runs = suite.run_suite(config, workdir)["runs"]
    return [{"run": name, **m} for name, s in runs.items() for m in s["members"]]
  return [{"run": "", **m} for m in train.train_and_evaluate(config, workdir)["members"]]


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", required=True, help="configs/NAME.py[:arg]")
  p.add_argument("--set", action="append", default=[], help="field=value (repeatable)")
  p.add_argument("--json", default="")
  a = p.parse_args(argv)
  results = {}
  for dtype in ("float32", "bfloat16"):
    config = load_config(a.config)
    config.progress = False
    for item in a.set:
      key, _, value = item.partition("=")
      config[key] = parse_value(value)
    config.compute_dtype = dtype
    with tempfile.TemporaryDirectory() as workdir:
      results[dtype] = members_of(config, workdir)
  rows = []
  for f32, bf16 in zip(results["float32"], results["bfloat16"], strict=True):
    row = {"run": f32["run"], "member": f32["label"]}
    for split in ("train", "test"):
      row[f"{split}_acc_float32"] = f32[f"{split}_acc"]
      row[f"{split}_acc_bfloat16"] = bf16[f"{split}_acc"]
      row[f"{split}_points"] = 100 * (bf16[f"{split}_acc"] - f32[f"{split}_acc"])
    rows.append(row)
    print(f"{row['run'] + ' ' if row['run'] else ''}{row['member']:24s} train "
          f"{100 * row['train_acc_float32']:6.2f} / {100 * row['train_acc_bfloat16']:6.2f} "
          f"({row['train_points']:+.2f})  test {100 * row['test_acc_float32']:6.2f} / "
          f"{100 * row['test_acc_bfloat16']:6.2f} ({row['test_points']:+.2f})  "
          "(float32 / bfloat16, points)", flush=True)
  worst = max(abs(r[f"{s}_points"]) for r in rows for s in ("train", "test"))
  print(f"largest difference: {worst:.2f} points", flush=True)
  return write_result(a.json, "bf16_accuracy", a, rows, largest_difference_points=worst)


if __name__ == "__main__":
  main()
