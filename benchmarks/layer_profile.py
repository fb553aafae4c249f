"""Where a conv net's training step spends its time, in JAX and PyTorch, and the step rate.

    python benchmarks/layer_profile.py --models=alexnet_small --threads=1 --pin=1 \
        --json=benchmarks/layer_profile_alexnet_1t.json

One SGD step (momentum 0.9) of one member on a resident batch of 128 CIFAR-shaped 28x28x3
inputs, random labels, in four forms:
- `jax:xla` -- the project's model with XLA's reference max-pool and LRN (layer_impl=xla);
- `jax:custom` -- the same with the custom-VJP formulations (layer_impl=custom);
- `jax:onednn` -- `jax:custom` with oneDNN's convolutions through XLA's FFI: issue #38's
  decision-gate prototype (benchmarks/onednn_gate/, not in the package). Time it in a process
  without torch forms: with torch imported the same step ran 80-93 ex/s against 102-108
  without (2026-12-07; torch brings its own OpenMP runtime);
- `torch:nchw`, `torch:channels_last` -- benchmarks/torch_reference.py's model, eager,
  fused SGD, zero_grad(set_to_none).
Both sides time the same thing: `--warmup` steps apart (JAX's compilation, PyTorch's first
allocations), then rounds of steps until `--seconds` of timed work per form, the forms
alternated A B C D A B C D; examples/s is the median round. Threads, pinned cores and
/proc/loadavg at the start and end of every row are recorded.

Then a per-operation profile of `--profile_steps` steps of each form: JAX through a
jax.profiler trace, each XLA op's time attributed to a row through its op metadata (the
`max_pool` / `lrn` name scopes of models/layers.py, flax's module names) and the HLO;
PyTorch through torch.profiler's self times by aten op.
"""

from __future__ import annotations

import argparse
import collections
import functools
import glob
import gzip
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import host  # noqa: E402

ROWS = ("conv forward", "conv input grad", "conv weight grad", "conv grads (one torch op)",
        "max-pool forward", "max-pool backward", "LRN forward", "LRN backward",
        "batch-norm", "dense layers", "elementwise", "optimizer", "copies / transposes",
        "step time in no traced op")
UNSEEN = ROWS[-1]
BATCH, SHAPE = 128, (28, 28, 3)


# --- JAX --------------------------------------------------------------------------------

def jax_step(model_name: str, layer_impl: str):
  """run(n): n training steps of one member; and the compiled step (for its HLO).
  `layer_impl=onednn`: `custom` with the gate prototype's oneDNN convolutions."""
  if layer_impl == "onednn":
    from onednn_gate import onednn

    with onednn.in_models():
      return jax_step(model_name, "custom")
  import jax
  import optax

  from rethinking_jax import models

  model = models.build(model_name, layer_impl=layer_impl)
  x = jax.random.normal(jax.random.key(0), (BATCH, *SHAPE))
  y = jax.random.randint(jax.random.key(1), (BATCH,), 0, 10)
  variables = model.init(jax.random.key(2), x)
  params, stats = variables["params"], variables.get("batch_stats", {})
  tx = optax.sgd(models.record(model_name).learning_rate, 0.9)

  def loss_fn(params, stats):
    logits, new = model.apply({"params": params, "batch_stats": stats}, x, train=True,
                              mutable=["batch_stats"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new

  @functools.partial(jax.jit, donate_argnums=(0,))
  def step(state):
    params, stats, opt = state
    (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats)
    updates, opt = tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), new.get("batch_stats", {}), opt), loss

  box = [(params, stats, tx.init(params))]
  hlo = step.lower(box[0]).compile().as_text()

  def run(n):
    for _ in range(n):
      box[0], loss = step(box[0])
    jax.block_until_ready(loss)
  return run, hlo


def _hlo_instructions(hlo: str) -> dict:
  """name -> (op_name metadata, result shape, what its fused computation contains)."""
  computations, current = {}, None
  for line in hlo.splitlines():
    head = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
    if head:
      current = computations.setdefault(head.group(1), [])
    elif current is not None:
      current.append(line)
  out = {}
  for line in hlo.splitlines():
    m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+) ", line)
    if not m:
      continue
    op = re.search(r'op_name="([^"]*)"', line)
    calls = re.search(r"calls=%([\w.\-]+)", line)
    body = "\n".join(computations.get(calls.group(1), [])) if calls else line
    out[m.group(1)] = (op.group(1) if op else "", m.group(2), body)
  return out


def _jax_row(name: str, info) -> str:
  op_name, shape, body = info
  backward = "transpose(" in op_name
  if "max_pool" in op_name or "select_and_scatter" in op_name or (
      not op_name and ("iota" in name or "reduce-window" in name or "scatter" in name)):
    return "max-pool backward" if backward or not op_name else "max-pool forward"
  if "/lrn/" in op_name or op_name.endswith("/lrn"):
    return "LRN backward" if backward else "LRN forward"
  if "BatchNorm" in op_name:
    return "batch-norm"
  ffi = re.search(r'custom_call_target="rethinking_jax_onednn_(\w+)"', body)
  if ffi:  # the gate prototype's oneDNN calls (benchmarks/onednn_gate)
    return {"forward": "conv forward", "input_grad": "conv input grad"}.get(
        ffi.group(1), "conv weight grad")
  if "convolution(" in body or "conv_general_dilated" in op_name:
    # (1x1 convolutions may be lowered to dots.) Activations lead with the batch, kernels
    # and their gradients with a spatial side or a channel count.
    leading = re.match(r"\w+\[(\d+)", shape)
    if leading and int(leading.group(1)) == BATCH:
      return "conv input grad" if backward else "conv forward"
    return "conv weight grad"
  if "dot(" in body or "dot_general" in op_name:
    return "dense layers"
  if "copy" in name or "transpose" in name:
    return "copies / transposes"
  if op_name and "jvp(" not in op_name:
    return "optimizer"
  return "elementwise"


def jax_profile(run, hlo: str, steps: int) -> dict:
  import jax

  instructions = _hlo_instructions(hlo)
  with tempfile.TemporaryDirectory() as d:
    with jax.profiler.trace(d, create_perfetto_trace=True):
      start = time.perf_counter()
      run(steps)
      wall_ms = (time.perf_counter() - start) * 1e3 / steps
    trace = glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)[0]
    with gzip.open(trace) as f:
      events = json.load(f)
  events = events["traceEvents"] if isinstance(events, dict) else events
  ms = collections.Counter()
  for e in events:
    if e.get("ph") == "X" and e.get("name") in instructions:
      ms[_jax_row(e["name"], instructions[e["name"]])] += e.get("dur", 0) / 1e3 / steps
  # XLA runs some thunks without a trace event (Eigen's convolutions on several cores): the
  # step's wall time not covered by attributed ops (with 2 threads, ops overlap, so this is
  # a lower bound of what went unseen)
  ms[UNSEEN] = max(0.0, wall_ms - sum(ms.values()))
  return dict(ms)


# --- PyTorch -------------------------------------------------------------------------------

def torch_step(model_name: str, layout: str):
  import torch
  import torch_reference as tr

  model = tr.build(model_name, (SHAPE[2], *SHAPE[:2]))
  x = torch.randn(BATCH, SHAPE[2], *SHAPE[:2])
  y = torch.randint(0, 10, (BATCH,))
  if layout == "channels_last":
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
  opt = tr._fused_sgd(model.parameters(), 0.01)
  loss_fn = torch.nn.CrossEntropyLoss()

  def run(n):
    for _ in range(n):
      opt.zero_grad(set_to_none=True)
      loss_fn(model(x), y).backward()
      opt.step()
  return run


_TORCH_ROWS = [
    (("convolution_backward",), "conv grads (one torch op)"),
    (("mkldnn_convolution", "_convolution", "conv2d", "convolution"), "conv forward"),
    (("max_pool2d_with_indices_backward",), "max-pool backward"),
    (("max_pool2d",), "max-pool forward"),
    (("batch_norm",), "batch-norm"),
    (("addmm", "aten::mm", "linear"), "dense layers"),
    (("copy_", "fill_", "zero_", "slice_backward", "cat", "contiguous", "constant_pad"),
     "copies / transposes"),
    (("_fused_sgd", "sgd", "foreach"), "optimizer"),
]


def torch_profile(run, steps: int) -> dict:
  from torch.profiler import ProfilerActivity, profile

  with profile(activities=[ProfilerActivity.CPU]) as p:
    run(steps)
  ms = collections.Counter()
  for event in p.key_averages():
    if not event.key.startswith("aten::") and "sgd" not in event.key.lower():
      continue
    row = next((r for keys, r in _TORCH_ROWS if any(k in event.key for k in keys)),
               "elementwise")
    ms[row] += event.self_cpu_time_total / 1e3 / steps
  return dict(ms)


# --- convolution candidates -------------------------------------------------------------

def im2col_conv(x, kernel):
  """A stride-1 SAME NHWC convolution as patches (the kh*kw shifted slices, concatenated on
  the channel axis in HWIO order) times the flattened kernel: one GEMM forward, and under
  autodiff two GEMMs (patches^T g, g kernel^T) plus the patches' transpose (pads and adds)."""
  import jax.numpy as jnp

  kh, kw, cin, cout = kernel.shape
  n, h, w, _ = x.shape
  padded = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  patches = jnp.concatenate([padded[:, i:i + h, j:j + w] for i in range(kh)
                             for j in range(kw)], axis=-1)
  return (patches.reshape(-1, kh * kw * cin) @ kernel.reshape(-1, cout)).reshape(n, h, w, cout)


def conv_candidates(repeats: int = 10) -> list[dict]:
  """ms of the small AlexNet's two convolutions (forward, input and weight gradient) as XLA's
  convolution and as im2col + GEMM; GFLOP/s of the forward."""
  import jax
  from ensemble_matmul import timed as timed_ms
  from jax import lax

  timed = functools.partial(timed_ms, repeats=repeats)
  xla = lambda x, k: lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                              dimension_numbers=("NHWC", "HWIO", "NHWC"))
  rows = []
  for side, cin in ((28, 3), (14, 64)):
    x = jax.random.normal(jax.random.key(0), (BATCH, side, side, cin))
    k = 0.05 * jax.random.normal(jax.random.key(1), (5, 5, cin, 64))
    g = jax.random.normal(jax.random.key(2), (BATCH, side, side, 64))
    gflop = 2 * BATCH * side * side * 25 * cin * 64 / 1e9
    for name, conv in (("xla", xla), ("im2col+gemm", im2col_conv)):
      fwd = timed(conv, x, k)
      dx = timed(lambda x, k, g, conv=conv: jax.vjp(lambda x: conv(x, k), x)[1](g)[0], x, k, g)
      dw = timed(lambda x, k, g, conv=conv: jax.vjp(lambda k: conv(x, k), k)[1](g)[0], x, k, g)
      rows.append({"layer": f"conv {side}x{side}x{cin} -> 64", "formulation": name,
                   "forward_ms": fwd, "input_grad_ms": dx, "weight_grad_ms": dw,
                   "forward_gflops": gflop / fwd * 1e3})
      print(f"{rows[-1]['layer']:22s} {name:12s} forward {fwd:6.1f} ms "
            f"({rows[-1]['forward_gflops']:5.1f} GFLOP/s)  input grad {dx:6.1f} ms  "
            f"weight grad {dw:6.1f} ms", flush=True)
  return rows


# --- main ----------------------------------------------------------------------------------

def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--models", default="alexnet_small")
  p.add_argument("--forms", default="jax:xla,jax:custom,torch:nchw,torch:channels_last")
  p.add_argument("--warmup", type=int, default=3, help="untimed steps per form")
  p.add_argument("--seconds", type=float, default=6.0, help="timed work per form and model")
  p.add_argument("--rounds", type=int, default=3, help="alternated rounds (median reported)")
  p.add_argument("--profile_steps", type=int, default=3, help="0: no profile")
  p.add_argument("--conv_candidates", action="store_true",
                 help="also time AlexNet's convolutions as XLA convs and as im2col + GEMM")
  p.add_argument("--json", default="")
  host.add_flags(p)
  a = p.parse_args(argv)
  setting = host.configure(a.threads, a.pin, a.conv_impl)
  torch = None
  if any(f.startswith("torch:") for f in a.forms.split(",")):
    try:
      import torch
    except ImportError:
      raise SystemExit("layer_profile: --forms names torch forms but torch is not installed "
                       "(pip install torch, or --forms=jax:xla,jax:custom)") from None
    if a.threads:
      torch.set_num_threads(a.threads)
  import jax
  from record import write_result

  rows, profiles = [], {}
  for model_name in a.models.split(","):
    runs, hlos = {}, {}
    for form in a.forms.split(","):
      lib, variant = form.split(":")
      if lib == "jax":
        runs[form], hlos[form] = jax_step(model_name, variant)
      else:
        runs[form] = torch_step(model_name, variant)
      runs[form](a.warmup)
    # steps per round: a round of each form lasts at least ~seconds / rounds (calibrated on
    # 3 steps, with a margin: on this VM a form's rounds spread by up to a third)
    per_step = {}
    for form, run in runs.items():
      start = time.perf_counter()
      run(3)
      per_step[form] = (time.perf_counter() - start) / 3
    steps = {f: max(1, math.ceil(1.3 * a.seconds / a.rounds / s)) for f, s in per_step.items()}
    rates = collections.defaultdict(list)
    load = {f: [host.loadavg(), ""] for f in runs}
    for _ in range(a.rounds):
      for form, run in runs.items():
        start = time.perf_counter()
        run(steps[form])
        rates[form].append(steps[form] * BATCH / (time.perf_counter() - start))
    for form in runs:
      load[form][1] = host.loadavg()
      row = {"model": model_name, "form": form, **setting,
             "examples_per_second": statistics.median(rates[form]),
             "rounds": [round(r, 1) for r in rates[form]],
             "timed_seconds": steps[form] * BATCH * a.rounds / statistics.median(rates[form]),
             "loadavg_start": load[form][0], "loadavg_end": load[form][1]}
      row["warning"] = "under 5 s of timed work" if row["timed_seconds"] < 5 else None
      rows.append(row)
      print(f"{model_name:16s} {form:20s} {row['examples_per_second']:8.1f} ex/s  rounds "
            f"{row['rounds']}  load {row['loadavg_start']} -> {row['loadavg_end']}", flush=True)
    if a.profile_steps:
      for form, run in runs.items():
        prof = (jax_profile(run, hlos[form], a.profile_steps) if form.startswith("jax")
                else torch_profile(run, a.profile_steps))
        profiles[f"{model_name} {form}"] = prof
      print_profile(model_name, {f: profiles[f"{model_name} {f}"] for f in runs})
  candidates = conv_candidates() if a.conv_candidates else []
  return write_result(a.json, "layer_profile", a, rows, profiles=profiles, host=setting,
                      conv_candidates=candidates,
                      torch=torch.__version__ if torch else None, jax_backend=jax.default_backend())


def print_profile(model_name: str, by_form: dict) -> None:
  forms = list(by_form)
  print(f"\n{model_name}: ms per step of {BATCH} (op time; profiler overhead included)")
  print("| row | " + " | ".join(forms) + " |")
  print("|---|" + "---:|" * len(forms))
  for row in ROWS:
    if any(row in by_form[f] for f in forms):
      print(f"| {row} | " + " | ".join(f"{by_form[f].get(row, 0):.1f}" for f in forms) + " |")
  print("| **sum** | " + " | ".join(f"{sum(by_form[f].values()):.1f}" for f in forms) + " |")


if __name__ == "__main__":
  main()
