"""One Markdown table of a benchmark suite's JSON files (benchmarks/gpu_suite.sh OUTDIR).

    python benchmarks/suite_summary.py OUTDIR
"""

from __future__ import annotations

import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _fmt(value, spec):
  return "—" if value is None else format(value, spec)


def memorization_table(results: dict) -> list[str]:
  lines = ["| part | model | dtype | form | examples/s | vs one member | vs fastest PyTorch "
           "| final train acc. % | MFU % |", "|---|---|---|---|---:|---:|---:|---:|---:|"]
  for part, result in results.items():
    dtype = result["args"]["dtype"]
    for row in result["rows"]:
      one = next((r for r in result["rows"] if r["model"] == row["model"]
                  and r["framework"] == "jax" and r["members"] == 1), None)
      vs_one = (row["examples_per_second"] / one["examples_per_second"]
                if one and row["framework"] == "jax" else None)
      acc = row.get("final_train_acc")
      lines.append(
          f"| {part}{' (partial)' if result.get('partial') else ''} | {row['model']} | "
          f"{dtype} | {row['framework']} {row['form']} | {row['examples_per_second']:,.0f} | "
          f"{_fmt(vs_one, '.2f')} | {_fmt(row.get('throughput_vs_torch_fastest'), '.2f')} | "
          f"{_fmt(None if acc is None else 100 * acc, '.2f')} | "
          f"{_fmt(100 * row['mfu'], '.1f')} |")
  return lines


def member_conv_table(result: dict) -> list[str]:
  import member_conv

  totals = member_conv.summarize(result["rows"])
  lines = ["| model | E | dtype | formulation | ms per step (all convolutions) | "
           "vs E single members |", "|---|---:|---|---|---:|---:|"]
  for (model, e, dtype, form), ms in sorted(totals.items()):
    one = totals.get((model, 1, dtype, "vmap"))
    vs = e * one / ms if one and form != "bn" else None
    lines.append(f"| {model} | {e} | {dtype} | {form} | {ms:.2f} | {_fmt(vs, '.2f')} |")
  return lines


def profile_table(result: dict) -> list[str]:
  row = result["rows"][0]
  lines = [f"{row['model']}, one member, batch {row['batch_size']}: {row['ms_per_step']:.3f} ms "
           f"per step, kernels busy {row['busy_ms_per_step']:.3f} ms, **idle "
           f"{100 * row['idle_fraction']:.1f}%**, {row['kernels_per_step']:.0f} kernels per "
           f"step ({row['kernel_source']})", "",
           "| kernel | ms per step | calls per step | share of kernel time % |",
           "|---|---:|---:|---:|"]
  for k in row["top_kernels"]:
    share = k["share_of_kernel_time"]
    lines.append(f"| `{k['kernel'][:80]}` | {k['ms_per_step']:.3f} | {k['calls_per_step']:.1f} "
                 f"| {_fmt(None if share is None else 100 * share, '.1f')} |")
  return lines


def throughput_table(results: dict) -> list[str]:
  lines = ["| part | model | E | strategy | examples/s | vs E single-member runs | "
           "compile s | XLA flags |", "|---|---|---:|---|---:|---:|---:|---|"]
  for part, result in results.items():
    for row in result["rows"]:
      lines.append(
          f"| {part}{' (partial)' if result.get('partial') else ''} | {row['model']} | "
          f"{row['members']} | {row['strategy']} | {row['examples_per_second']:,.0f} | "
          f"{_fmt(row.get('vs_sequential_runs'), '.2f')} | {row['compile_seconds']:.1f} | "
          f"{row.get('xla_flags') or '—'} |")
  return lines


def main(outdir: str) -> str:
  results = {}
  for path in sorted(glob.glob(os.path.join(outdir, "*.json"))):
    with open(path) as f:
      results[os.path.basename(path)[:-5]] = json.load(f)
  memorization = {k: v for k, v in results.items() if v.get("benchmark") == "memorization"}
  device = next(iter(results.values()))["device"] if results else "?"
  lines = [f"# Benchmark suite: {outdir} ({device})", ""]
  if memorization:
    lines += ["## Training throughput", "", *memorization_table(memorization), ""]
  profiles = [v for v in results.values() if v.get("benchmark") == "step_profile"]
  for result in profiles:
    lines += ["## Where one member's step goes (benchmarks/step_profile.py)", "",
              *profile_table(result), ""]
  throughput = {k: v for k, v in results.items() if v.get("benchmark") == "engine_throughput"}
  if throughput:
    lines += ["## Member formulations (benchmarks/engine_throughput.py)", "",
              *throughput_table(throughput), ""]
  if "member_conv" in results:
    lines += ["## Convolutions of E members (benchmarks/member_conv.py)", "",
              *member_conv_table(results["member_conv"]), ""]
  text = "\n".join(lines)
  print(text)
  return text


if __name__ == "__main__":
  main(sys.argv[1])
