"""The host loop: train in compiled chunks, evaluate, track memorization and divergence.

The host synchronises only at evaluation points. A member that memorized keeps training
(the same in every strategy, and the paper's protocol: fixed schedules, no per-model early
stop); the run ends when every member that has not diverged has memorized (plus
`extra_epochs` if asked) or at `num_epochs`. A member whose loss turns NaN/inf is marked
diverged and does not stop the others.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from rethinking_jax.engine import program
from rethinking_jax.engine.members import MemberArrays, MemberSpec
from rethinking_jax.engine.program import DeviceData, MemberLabels, TrainState
from rethinking_jax.engine.strategies import MemberPrograms

METRIC_NAMES = ("train_loss", "train_acc", "test_loss", "test_acc")


@dataclasses.dataclass(frozen=True)
class FitSettings:
  num_epochs: int
  eval_every_epochs: int
  memorize_threshold: float = 1.0
  stop_when_memorized: bool = True
  extra_epochs: int = 0
  progress: bool = True


@dataclasses.dataclass
class MemberStatus:
  """Per-member bookkeeping across evaluation points."""

  steps_to_memorize: int | None = None
  epochs_to_memorize: int | None = None
  diverged: bool = False
  best_test_acc: float = 0.0
  final: dict | None = None


@dataclasses.dataclass
class FitResult:
  state: TrainState
  status: list[MemberStatus]
  history: list[dict]
  steps: int
  epochs: int
  train_seconds: float
  eval_seconds: float
  compile_seconds: float
  examples_per_second: float


def _finite_or_none(x: float):
  return float(x) if math.isfinite(x) else None


def fit(programs: MemberPrograms, specs: list[MemberSpec], members: MemberArrays,
        labels: MemberLabels, data: DeviceData, settings: FitSettings,
        on_eval: Callable[[list[dict]], None] = lambda records: None) -> FitResult:
  """Trains all members until they memorized or `num_epochs`; calls on_eval per eval point."""
  spec = programs.spec
  state = programs.init(members)
  status = [MemberStatus() for _ in specs]
  history: list[dict] = []
  epoch, extra_left = 0, None
  train_seconds = eval_seconds = 0.0
  bar = tqdm(total=settings.num_epochs, unit="epoch", disable=not settings.progress,
             leave=False)
  while epoch < settings.num_epochs:
    chunk = min(settings.eval_every_epochs, settings.num_epochs - epoch)
    if extra_left is not None:
      chunk = min(chunk, extra_left)
    compile_before = programs.compile_seconds
    start = time.perf_counter()
    state = jax.block_until_ready(programs.train_chunk(state, members, labels, data, epoch,
                                                       chunk))
    train_seconds += time.perf_counter() - start - (programs.compile_seconds - compile_before)
    epoch += chunk
    bar.update(chunk)

    compile_before = programs.compile_seconds
    start = time.perf_counter()
    metrics = np.asarray(jax.device_get(programs.evaluate(state, members, labels, data)))
    nonfinite = np.asarray(jax.device_get(state.nonfinite))
    eval_seconds += time.perf_counter() - start - (programs.compile_seconds - compile_before)

    step = epoch * spec.steps_per_epoch
    lr_scale = spec.lr_decay_rate ** (step // spec.lr_decay_interval_steps)
    records = []
    for m, (member, st) in enumerate(zip(specs, status, strict=True)):
      values = dict(zip(METRIC_NAMES, map(float, metrics[m]), strict=True))
      if nonfinite[m] or not math.isfinite(values["train_loss"]):
        st.diverged = True
      elif st.steps_to_memorize is None and values["train_acc"] >= settings.memorize_threshold:
        st.steps_to_memorize, st.epochs_to_memorize = step, epoch
      if math.isfinite(values["test_acc"]):
        st.best_test_acc = max(st.best_test_acc, values["test_acc"])
      record = {"step": step, "epoch": epoch, "member": m, "label": member.label,
                **{k: _finite_or_none(v) for k, v in values.items()},
                "learning_rate": member.learning_rate * lr_scale,
                "wall_time": round(train_seconds + eval_seconds, 4)}
      st.final = record
      records.append(record)
    history.extend(records)
    on_eval(records)

    active = [st for st in status if not st.diverged]
    if settings.stop_when_memorized and extra_left is None and all(
        st.steps_to_memorize is not None for st in active):
      extra_left = settings.extra_epochs
    elif extra_left is not None:
      extra_left -= chunk
    if extra_left is not None and extra_left <= 0:
      break
  bar.close()
  steps = epoch * spec.steps_per_epoch
  examples = steps * spec.batch_size * len(specs)
  return FitResult(state, status, history, steps, epoch, train_seconds, eval_seconds,
                   programs.compile_seconds, examples / max(train_seconds, 1e-9))


def device_data(train_images, test_images, mean, std) -> DeviceData:
  """Puts the uint8 dataset on the default device once."""
  return DeviceData(*jax.device_put((train_images, test_images, np.asarray(mean, np.float32),
                                     np.asarray(std, np.float32))))


__all__ = ["FitResult", "FitSettings", "MemberStatus", "device_data", "fit", "program"]
