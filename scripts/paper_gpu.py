"""The paper's convolutional results on real CIFAR-10, in parts sized for one GPU call each.

    bash scripts/paper_gpu.sh OUTDIR [--tiny] [--budget=SECONDS] [--data=ARCHIVE]
                                     [--parts=figure1a,table1_inception,...]

Parts, most important first (each a suite of configs/, members of a run trained together):

    figure1a           Figure 1a: small Inception on true labels, random labels, shuffled
                       pixels, random pixels, Gaussian noise (one run of five members)
    table1_inception   Table 1, the small-Inception rows (with and without batch-norm)
    figure2b           Figure 2b: batch-norm on and off, the running best test accuracy
    table1_alexnet     Table 1, the AlexNet rows
    figure1bc_conv     Figure 1b/1c for small Inception and AlexNet (p = 0, 0.2, ..., 1)
    table4_conv        Table 4, the convolutional rows (weight decay, random crop, augment)

Every part stops its members at 100% train accuracy (the paper's "converged"), runs under
its own time limit, and writes its report, CSV, figures and metrics under OUTDIR/<part>/ as
it finishes; a part stopped by its limit gets its report of what it reached, marked as not
finished. Before a part starts, a warm-up trains one epoch of each of its runs (into
OUTDIR/<part>.warmup, compiling the programs the part then takes from JAX's compilation
cache) and prints the expected seconds; a part that cannot finish in the budget left is
skipped, saying so. OUTDIR/parts.md and parts.json list every part: its command, status,
estimate and seconds.

`--tiny` runs every part on a few hundred synthetic images on the CPU, one epoch: a test of
this script (tests/test_paper_gpu.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Part:
  name: str
  config: str             # configs/<file>:<arg>
  expected_epochs: int    # the slowest member's epochs to 100% train accuracy (an estimate)
  limit_s: int            # this part's own time limit


# Expected epochs are estimates, not measurements: the paper's Figure 1a shows the small
# Inception's loss reaching zero within ~15-20k steps on random labels and later for random
# pixels / Gaussian inputs (at 390 steps per epoch: ~50-70 epochs); true labels take a
# fraction of that. Each part's limit keeps it inside one 10-minute device call.
PARTS = (
    Part("figure1a", "figure1.py:a_inception_small", 70, 540),
    Part("table1_inception", "table1.py:inception", 60, 540),
    Part("figure2b", "figure2.py", 40, 540),
    Part("table1_alexnet", "table1.py:alexnet_small", 60, 540),
    Part("figure1bc_conv", "figure1.py:bc_inception_small,bc_alexnet_small", 70, 540),
    Part("table4_conv", "table4.py:inception,alexnet", 70, 540),
)

# Real data: the CIFAR-10 JPEG archive, every part stopping at 100% train accuracy.
REAL = ["--config.dataset=image_folder", "--config.class_order=cifar10",
        "--config.stop_when_memorized=True", "--config.progress=False"]
# --tiny: a few hundred CIFAR-shaped synthetic images, one epoch, on the CPU.
TINY = ["--config.dataset=synthetic", "--config.synthetic_shape=(12,12,3)",
        "--config.crop_size=10", "--config.synthetic_train=256", "--config.synthetic_test=64",
        "--config.batch_size=128", "--config.eval_batch_size=128",
        "--config.member_strategy=sequential", "--config.stop_when_memorized=True",
        "--config.progress=False"]


def _runs_with_own_epochs(part: Part) -> list[str]:
  """The part's runs that set num_epochs themselves (Table 4's crop and augment runs): a
  command-line num_epochs does not reach them, so they get their own override."""
  sys.path.insert(0, ROOT)
  import importlib

  name, _, arg = part.config.partition(":")
  module = importlib.import_module(f"rethinking_jax.configs.{name.removesuffix('.py')}")
  config = module.get_config(arg)
  return [run for run, overrides in config.runs.items() if "num_epochs" in overrides]


def command(part: Part, workdir: str, args, num_epochs: int | None = None) -> list[str]:
  flags = TINY if args.tiny else [*REAL, f"--config.data_dir={args.data}"]
  num_epochs = num_epochs or (1 if args.tiny else None)
  if num_epochs is not None:
    flags = [*flags, f"--config.num_epochs={num_epochs}", "--config.checkpoint_every_epochs=0",
             *(f"--config.runs.{run}.num_epochs={num_epochs}"
               for run in _runs_with_own_epochs(part))]
  return [sys.executable, "-m", "rethinking_jax.main", f"--config=configs/{part.config}",
          f"--workdir={workdir}", *flags]


def seconds_per_epoch(workdir: str) -> dict[str, float]:
  """{run: training + evaluation seconds of its first epoch} of a warm-up workdir."""
  out = {}
  for name in sorted(os.listdir(workdir)):
    path = os.path.join(workdir, name, "summary.json")
    if os.path.exists(path):
      with open(path) as f:
        run = json.load(f)["run"]
      out[name] = (run["train_seconds"] + run["eval_seconds"]) / max(run["epochs"], 1)
  return out


def run_limited(cmd: list[str], limit_s: float, log_path: str) -> tuple[int, float, bool]:
  """(exit status, seconds, stopped by the limit). At the limit the run gets SIGTERM: it
  saves a checkpoint at its next evaluation point and exits (3); a minute later, SIGKILL."""
  start = time.perf_counter()
  with open(log_path, "a") as log:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
      proc.wait(timeout=max(limit_s, 1))
      return proc.returncode, time.perf_counter() - start, False
    except subprocess.TimeoutExpired:
      proc.send_signal(signal.SIGTERM)
      try:
        proc.wait(timeout=60)
      except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
      return proc.returncode, time.perf_counter() - start, True
    finally:  # this script stopped (Ctrl-C, a timeout of its own): no run outlives it
      if proc.poll() is None:
        proc.kill()
        proc.wait()


def render_report(workdir: str, log_path: str) -> None:
  with open(log_path, "a") as log:
    subprocess.run([sys.executable, "-m", "rethinking_jax.report", f"--workdir={workdir}"],
                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def run_part(part: Part, args, deadline: float) -> dict:
  workdir = os.path.join(args.outdir, part.name)
  log_path = os.path.join(args.outdir, f"{part.name}.log")
  record = {"part": part.name, "config": part.config,
            "command": " ".join(command(part, workdir, args)[1:])}
  left = deadline - time.perf_counter()
  # Warm-up: one epoch of every run of the part, which also compiles what the part needs.
  warm = os.path.join(args.outdir, f"{part.name}.warmup")
  status, warm_s, _ = run_limited(command(part, warm, args, num_epochs=1),
                                  min(part.limit_s, left), log_path)
  per_epoch = seconds_per_epoch(warm) if status == 0 else {}
  epochs = args.expected_epochs or (1 if args.tiny else part.expected_epochs)
  estimate = sum(s * epochs for s in per_epoch.values())
  left = deadline - time.perf_counter()
  record.update(warmup_seconds=round(warm_s, 1), seconds_per_epoch=per_epoch,
                expected_epochs=epochs, estimate_seconds=round(estimate, 1))
  if status != 0:
    return {**record, "status": f"warm-up failed (exit {status}); see {log_path}"}
  print(f"{part.name}: {len(per_epoch)} run(s), "
        + ", ".join(f"{n} {s:.1f} s/epoch" for n, s in per_epoch.items())
        + f"; expected ~{estimate:.0f} s for {epochs} epochs (limit {part.limit_s} s, "
          f"{left:.0f} s left)", flush=True)
  if estimate > left:
    return {**record, "status": f"skipped: needs ~{estimate:.0f} s, {left:.0f} s left"}
  status, seconds, limited = run_limited(command(part, workdir, args),
                                         min(part.limit_s, left), log_path)
  if status != 0:  # a finished suite wrote its report; a stopped one gets what it reached
    render_report(workdir, log_path)
  state = ("finished" if status == 0 else "time limit: report of what it reached"
           if limited else f"failed (exit {status}); see {log_path}")
  return {**record, "status": state, "seconds": round(seconds, 1),
          "report": os.path.join(part.name, "report.md")}


def write_summary(outdir: str, records: list[dict], args) -> None:
  with open(os.path.join(outdir, "parts.json"), "w") as f:
    json.dump({"tiny": args.tiny, "budget_s": args.budget, "data": args.data,
               "parts": records}, f, indent=2)
  lines = ["# Convolutional parts of the paper", "",
           f"`bash scripts/paper_gpu.sh {args.outdir}" + (" --tiny" if args.tiny else "")
           + f" --budget={args.budget}`" + (" (tiny: synthetic data)" if args.tiny else ""),
           "", "| part | status | estimate s | seconds | report |", "|---|---|---:|---:|---|"]
  for r in records:
    lines.append(f"| {r['part']} | {r['status']} | {r.get('estimate_seconds', '—')} | "
                 f"{r.get('seconds', '—')} | {r.get('report', '—')} |")
  with open(os.path.join(outdir, "parts.md"), "w") as f:
    f.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("outdir")
  p.add_argument("--tiny", action="store_true", help="a few hundred synthetic images, CPU")
  p.add_argument("--budget", type=float, default=3000, help="seconds for all parts")
  p.add_argument("--data", default=os.path.join(ROOT, "data", "cifar10-jpeg.tar.gz"))
  p.add_argument("--parts", default=",".join(part.name for part in PARTS))
  p.add_argument("--expected_epochs", type=int, default=0,
                 help="epochs to plan each part for (0: the part's own estimate)")
  args = p.parse_args(argv)
  names = [n for n in args.parts.split(",") if n]
  unknown = sorted(set(names) - {part.name for part in PARTS})
  if unknown:
    print(f"error: --parts: unknown {', '.join(unknown)}; allowed: "
          f"{', '.join(part.name for part in PARTS)}", file=sys.stderr)
    return 2
  if not args.tiny and not os.path.exists(args.data):
    print(f"error: --data: {args.data} does not exist (the CIFAR-10 JPEG archive; copy it "
          "into data/ or pass --data=PATH)", file=sys.stderr)
    return 2
  os.makedirs(args.outdir, exist_ok=True)
  # The warm-up's programs are the part's: the part takes them from this cache.
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(args.outdir, ".jax_cache"))
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
  deadline = time.perf_counter() + args.budget
  records = []
  for part in PARTS:
    if part.name not in names:
      continue
    left = deadline - time.perf_counter()
    if left < 30:
      records.append({"part": part.name, "config": part.config,
                      "status": f"skipped: {left:.0f} s of the budget left"})
    else:
      records.append(run_part(part, args, deadline))
    print(f"{part.name}: {records[-1]['status']}", flush=True)
    write_summary(args.outdir, records, args)  # after every part: nothing lost at a cut
  return 0


if __name__ == "__main__":
  sys.exit(main())
