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
from absl import logging
from tqdm.auto import tqdm

from rethinking_jax.base import sections
from rethinking_jax.base.errors import require
from rethinking_jax.engine import program, sharding
from rethinking_jax.engine.members import MemberArrays, MemberSpec, describe
from rethinking_jax.engine.program import DeviceData, TrainState
from rethinking_jax.engine.strategies import CompiledMembers

# The metrics a record reports, by name (program.Metrics); a member's row in summary.json
# carries the first six, as of its last evaluation point.
METRIC_NAMES = program.METRIC_NAMES
SUMMARY_METRICS = METRIC_NAMES[:6]
# Beside them in every record: minibatch_loss, the train-mode cross-entropy of the SGD
# minibatches averaged over the steps since the previous point (the paper's "training loss";
# train_loss above is the eval-mode loss on the whole training split).



# How long a run goes, how often it is evaluated, when a member memorized. How long it goes,
# how often it is evaluated and what it shows may change on resume: evaluation never changes
# the training (tests/test_engine.py), and a finer cadence resolves a crossing more closely.
SECTION = sections.Section("loop", {
    "num_epochs": 100,
    "eval_every_epochs": 1,
    # > 0: evaluate every this many steps instead (a fraction of an epoch: convergence times to
    # within that many steps)
    "eval_every_steps": 0,
    # > 1: only every Nth evaluation point measures both splits in full; the others as much of
    # the train split as tells whether a member memorized (the same step is found; the point
    # of a memorization and the last are full)
    "eval_full_every": 1,
    "memorize_threshold": 1.0,     # "memorized" = train accuracy (eval mode) >= this [default]
    "stop_when_memorized": True,   # end once every member memorized ...
    "extra_epochs": 0,             # ... after this many more epochs
    "progress": True,              # progress bar on stderr
    # N > 0: trace N steps after the first evaluation point (compiled, warm) with
    # jax.profiler into WORKDIR/profile
    "profile_steps": 0,
}, resume_may_change=frozenset({"num_epochs", "extra_epochs", "stop_when_memorized",
                                "eval_every_epochs", "eval_every_steps", "eval_full_every",
                                "progress", "profile_steps"}))


def check_config(c, streamed: bool = False) -> None:
  """The loop's fields: how long, how often evaluated, when memorized (UserError);
  `streamed`: whether the run reads its data batch by batch (data.inputs.streams)."""
  require(c.num_epochs > 0, f"num_epochs: {c.num_epochs} must be a positive integer")
  require(c.eval_every_epochs > 0, f"eval_every_epochs: {c.eval_every_epochs} must be > 0")
  require(c.eval_every_steps >= 0, f"eval_every_steps: {c.eval_every_steps} must be >= 0 "
          "(0 = every eval_every_epochs epochs)")
  require(c.extra_epochs >= 0, f"extra_epochs: {c.extra_epochs} must be >= 0")
  require(isinstance(c.eval_full_every, int) and c.eval_full_every >= 1,
          f"eval_full_every: {c.eval_full_every} must be an integer >= 1 (1 = every "
          "evaluation point in full)")
  require(c.eval_full_every == 1 or not streamed,
          f"eval_full_every: {c.eval_full_every} needs the device input path (the streamed "
          "one evaluates every point in full); allowed with input_pipeline=stream: 1")
  require(0 < c.memorize_threshold <= 1,
          f"memorize_threshold: {c.memorize_threshold} must be in (0, 1]")
  require(isinstance(c.profile_steps, int) and c.profile_steps >= 0,
          f"profile_steps: {c.profile_steps} must be an integer >= 0 (0 = no trace)")

@dataclasses.dataclass(frozen=True)
class FitSettings:
  num_epochs: int
  eval_every_epochs: int
  memorize_threshold: float = 1.0
  stop_when_memorized: bool = True
  extra_epochs: int = 0
  progress: bool = True
  eval_every_steps: int = 0       # > 0: evaluate every this many steps (finer than an epoch)
  # Every this many evaluation points, both splits in full; at the others only as much of the
  # training split as tells whether a member memorized (see `fit`). 1: every point in full.
  eval_full_every: int = 1

  @classmethod
  def from_config(cls, config) -> FitSettings:
    """A run config's settings, each the loop section's field of its name."""
    c = SECTION.of(config)
    return cls(**{f.name: c[f.name] for f in dataclasses.fields(cls)})

  def eval_interval(self, steps_per_epoch: int) -> int:
    """Steps between two evaluation points (they fall on multiples of it)."""
    return self.eval_every_steps or self.eval_every_epochs * steps_per_epoch


def epochs_of(step: int, steps_per_epoch: int) -> int | float:
  """Epochs trained after `step` steps: an int on an epoch boundary, else a fraction."""
  whole, part = divmod(step, steps_per_epoch)
  return whole if part == 0 else round(step / steps_per_epoch, 4)


@dataclasses.dataclass
class MemberStatus:
  """Per-member bookkeeping across evaluation points."""

  steps_to_memorize: int | None = None
  epochs_to_memorize: int | float | None = None
  diverged: bool = False
  best_test_acc: float = 0.0
  final: dict | None = None


@dataclasses.dataclass
class Pace:
  """The chunk in flight and how long chunks take, for a stop request to say how long it
  waits (a signal arrives while a compiled chunk runs; the run stops after it)."""

  chunk_end_step: int = 0
  chunk_started: float = 0.0       # time.perf_counter() at its dispatch
  chunk_seconds: float | None = None  # its expected time, from the last chunk's steps/s
  eval_seconds: float = 0.0        # the last evaluation's

  def wait(self) -> str:
    """'at step N, in about T s' (or why the time is not known yet)."""
    if self.chunk_seconds is None:
      return (f"at step {self.chunk_end_step} (the first chunk, which also compiles: its "
              "time is not measured yet)")
    left = max(0.0, self.chunk_seconds - (time.perf_counter() - self.chunk_started))
    return f"at step {self.chunk_end_step}, in about {left + self.eval_seconds:.0f} s"


@dataclasses.dataclass
class Progress:
  """Where a run stands between evaluation points: with the TrainState, all a resume needs.

  There is no RNG state to keep: every random draw is a function of a member's seed and the
  epoch or step (see program.py), so a run resumed at any evaluation point continues exactly.
  """

  step: int = 0                   # steps trained
  epoch: int | float = 0          # the same in epochs (a fraction between epoch boundaries)
  status: list[MemberStatus] = dataclasses.field(default_factory=list)
  train_seconds: float = 0.0
  eval_seconds: float = 0.0
  compile_seconds: float = 0.0    # summed over the run's sessions (a resume compiles again)
  extra_left: int | None = None   # steps still to train once every member memorized
  done: bool = False
  # [first, last) steps of each session in the final state's lineage: a resumed run shows
  # the checkpoint it resumed from, and that nothing before it was trained again.
  sessions: list[list[int]] = dataclasses.field(default_factory=list)

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, d: dict, steps_per_epoch: int) -> Progress:
    """Also reads a checkpoint written before progress was counted in steps (its `epoch`
    and `extra_left` were whole epochs)."""
    if "step" not in d:
      d = {**d, "step": d["epoch"] * steps_per_epoch,
           "extra_left": None if d.get("extra_left") is None
           else d["extra_left"] * steps_per_epoch}
    return cls(**{**d, "status": [MemberStatus(**s) for s in d["status"]]})


def member_summary(index: int, spec: MemberSpec, last: dict, best_test_acc: float | None,
                   steps_to_memorize: int | None, epochs_to_memorize: float | None,
                   diverged: bool) -> dict:
  """A member's row in summary.json: its settings, SUMMARY_METRICS of its last evaluation
  point, and what its run found of it; the one place that says what the row holds (a
  finished run's summary and the provisional one of a run not finished)."""
  return {**describe(index, spec), **{k: last.get(k) for k in SUMMARY_METRICS},
          "best_test_acc": best_test_acc, "steps_to_memorize": steps_to_memorize,
          "epochs_to_memorize": epochs_to_memorize, "diverged": diverged}


def stop_reason(status: list[MemberStatus], epochs: int, num_epochs: int) -> tuple[str, str]:
  """(code, sentence) of why a run ended, true to every member: `memorized` only when every
  member that did not diverge reached the threshold, `diverged` when none is left,
  `num_epochs` otherwise. Members that diverged are always counted in the sentence."""
  n = len(status)
  diverged = sum(st.diverged for st in status)
  memorized = sum(st.steps_to_memorize is not None and not st.diverged for st in status)
  if diverged == n:
    return "diverged", ("every member diverged (its training loss became NaN/inf); "
                        "none memorized")
  tail = f"; {diverged} of {n} diverged" if diverged else ""
  if memorized == n - diverged:
    subject = "every member" if not diverged else "every member that did not diverge"
    return "memorized", f"{subject} memorized its training set{tail}"
  return "num_epochs", f"num_epochs={num_epochs} reached with {memorized} of {n} members " \
                       f"memorized{tail}"


@dataclasses.dataclass
class FitResult:
  state: TrainState
  progress: Progress
  history: list[dict]             # the evaluation records of this call
  steps: int                      # steps taken in this call
  interrupted: bool = False

  @property
  def status(self) -> list[MemberStatus]:
    return self.progress.status

  @property
  def epochs(self) -> int | float:
    return self.progress.epoch

  @property
  def train_seconds(self) -> float:
    return self.progress.train_seconds

  @property
  def eval_seconds(self) -> float:
    return self.progress.eval_seconds

  @property
  def compile_seconds(self) -> float:
    return self.progress.compile_seconds


def _finite_or_none(x: float):
  return float(x) if math.isfinite(x) else None


def _news(metrics, status, settings) -> list[str | None]:
  """What an evaluation tells of each member that its status does not know yet: 'diverged'
  (a NaN/inf training loss), 'memorized' (train accuracy >= the threshold), or None."""
  news = []
  for m, st in enumerate(status):
    loss, acc = float(metrics.train_loss[m]), float(metrics.train_acc[m])
    if metrics.nonfinite[m] > 0 or not math.isfinite(loss):
      news.append(None if st.diverged else "diverged")
    elif st.steps_to_memorize is None and acc >= settings.memorize_threshold:
      news.append("memorized")
    else:
      news.append(None)
  return news


def max_errors_below(threshold: float, n: int) -> int:
  """The most top-1 errors on `n` examples whose accuracy, computed as the evaluation does
  (float32 correct / n), still reaches `threshold`; -1 when none does."""
  correct = max(0, math.floor(threshold * n) - 2)
  while correct <= n and float(np.float32(correct) / np.float32(n)) < threshold:
    correct += 1
  return n - correct


def _evaluate(programs, state, members, inputs, settings, progress, status, interval,
              final: bool) -> program.Metrics:
  """One evaluation point's Metrics ([E] arrays on the host).

  Every `eval_full_every`-th point, and a point that ends the run (`final`), evaluates both
  splits in full. Any other measures the training split only, each member until its errors
  show it cannot have memorized (program.evaluate_train_until; members that memorized
  already: one batch, an estimate); should that show a member newly memorized or diverged, or
  the run ending, the point is evaluated again in full. So convergence is found at exactly
  the step a full evaluation at every point finds, and it and the run's end carry test
  metrics; in between, test metrics are absent and train metrics cover part of the split.
  """
  n = inputs.train_eval_examples
  point = progress.step // interval
  if not final and settings.eval_full_every > 1 and point % settings.eval_full_every:
    budget = max_errors_below(settings.memorize_threshold, n)
    limits = [-1 if st.steps_to_memorize is not None or st.diverged else budget
              for st in status]
    metrics = jax.tree.map(np.asarray, jax.device_get(
        programs.evaluate_train_until(state, members, inputs, limits)))
    # No news, no end: a run ends at a point only when its last member memorizes or diverges
    # there (or at the points `final` names)
    if not any(_news(metrics, status, settings)):
      return metrics
  return jax.tree.map(np.asarray, jax.device_get(programs.evaluate(state, members, inputs)))


def _records(specs, status, metrics, minibatch_loss, progress, spec, settings):
  """Updates per-member status from one evaluation and returns its metrics records
  (`minibatch_loss`: [E], the interval's mean train-mode minibatch loss)."""
  step = progress.step
  lr_scale = float(program.learning_rate(spec, 1.0, step))
  records = []
  for m, ((member, st), new) in enumerate(zip(zip(specs, status, strict=True),
                                              _news(metrics, status, settings), strict=True)):
    values = {name: float(getattr(metrics, name)[m]) for name in METRIC_NAMES}
    if new == "diverged":
      st.diverged = True
    elif new == "memorized":
      st.steps_to_memorize, st.epochs_to_memorize = step, progress.epoch
    if math.isfinite(values["test_acc"]):
      st.best_test_acc = max(st.best_test_acc, values["test_acc"])
    record = {"step": step, "epoch": progress.epoch, "member": m, "label": member.label,
              **{k: _finite_or_none(v) for k, v in values.items()},
              "minibatch_loss": _finite_or_none(float(minibatch_loss[m])),
              "train_examples": int(metrics.train_examples[m]),
              "learning_rate": member.learning_rate * lr_scale,
              "wall_time": round(progress.train_seconds + progress.eval_seconds, 4)}
    st.final = record
    records.append(record)
  return records


def _log_estimate(seconds: float, chunk: int, total: int, step: int, spe: int):
  """The measured speed of this session's first chunk (its training and evaluation, without
  compilation) and what the rest of the cap would take at it: an upper bound on the run's
  time (it ends sooner once every member memorized)."""
  per_step = seconds / chunk
  logging.info("measured %.3f s per step (all members, evaluation included) over the first "
               "%d steps: the cap of %d steps (%g epochs) would take at most %.0f more "
               "minutes", per_step, chunk, total, total / spe,
               per_step * (total - step) / 60)


def _progress_bar(settings: FitSettings, epoch):
  """Epochs trained; where the run stops once every member memorized, the bar says so and
  its remaining time is for the cap (an upper bound), not a forecast."""
  early = settings.stop_when_memorized
  return tqdm(total=settings.num_epochs, initial=epoch, unit="epoch", leave=False,
              disable=not settings.progress,
              desc=f"until memorized, at most {settings.num_epochs} epochs" if early else None,
              bar_format=("{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total_fmt} "
                          "[{elapsed}, at most {remaining} more, {rate_fmt}]") if early
              else None)


def fit(programs: CompiledMembers, specs: list[MemberSpec], members: MemberArrays, inputs,
        settings: FitSettings,
        on_eval: Callable[[list[dict]], None] = lambda records: None, *,
        state: TrainState | None = None, progress: Progress | None = None,
        after_eval: Callable[[TrainState, Progress], bool] = lambda state, progress: False,
        pace: Pace | None = None, profile: tuple[int, str] | None = None) -> FitResult:
  """Trains all members until they memorized or `num_epochs`.

  `inputs`: what `programs` read (program.DeviceInputs, or streaming.StreamInputs for
  StreamPrograms); fit passes it through without asking which.

  Starts fresh, or from (`state`, `progress`) of a checkpoint. After every evaluation point
  calls `on_eval(records)`, then `after_eval(state, progress)`, which returns True to stop
  early (preemption). `pace`, when given, is kept up to date with the chunk in flight.
  `profile` = (N, directory): the first N steps after the first evaluation point (compiled
  and warm; at most the steps to the next point) are traced with jax.profiler into the
  directory, as a chunk of their own followed by the rest of theirs (the same steps).
  """
  spec = programs.spec
  spe = spec.steps_per_epoch
  compiled_before = programs.compile_seconds
  if state is None:
    state = programs.init(members)
  progress = progress or Progress(status=[MemberStatus() for _ in specs])
  total = settings.num_epochs * spe
  interval = settings.eval_interval(spe)
  # A resumed run may go on longer than it was first asked to (a larger num_epochs).
  if not settings.stop_when_memorized:
    progress.extra_left = None
  progress.done = ((progress.extra_left is not None and progress.extra_left <= 0)
                   or progress.step >= total)
  history: list[dict] = []
  interrupted = False
  start_step = progress.step
  if not progress.done:
    progress.sessions.append([progress.step, progress.step])
  bar = None  # made after the first evaluation: until then time is mostly compilation
  pace = pace or Pace()
  per_step = None  # seconds per training step, measured from the last chunk
  while not progress.done and progress.step < total:
    # Up to the next multiple of the interval: the same points however often it resumed.
    chunk = min(interval - progress.step % interval, total - progress.step)
    if progress.extra_left is not None:
      chunk = min(chunk, progress.extra_left)
    compile_before = programs.compile_seconds
    start = time.perf_counter()
    pace.chunk_end_step, pace.chunk_started = progress.step + chunk, start
    pace.chunk_seconds = None if per_step is None else per_step * chunk
    if profile and profile[0] and bar is not None:
      state = _traced_chunk(programs, state, members, inputs, progress.step, chunk, *profile)
      profile = None
    else:
      state = jax.block_until_ready(programs.train_chunk(state, members, inputs,
                                                         progress.step, chunk))
    chunk_seconds = (time.perf_counter() - start
                     - (programs.compile_seconds - compile_before))
    state, minibatch_loss = programs.take_minibatch_loss(state, chunk)
    per_step = chunk_seconds / chunk
    progress.train_seconds += chunk_seconds
    progress.step += chunk
    progress.epoch = epochs_of(progress.step, spe)
    progress.sessions[-1][1] = progress.step
    if bar is not None:
      bar.update(chunk / spe)

    compile_before = programs.compile_seconds
    start = time.perf_counter()
    final = (progress.step >= total or (progress.extra_left is not None
                                        and progress.extra_left - chunk <= 0))
    metrics = _evaluate(programs, state, members, inputs, settings, progress, progress.status,
                        interval, final)
    eval_seconds = time.perf_counter() - start - (programs.compile_seconds - compile_before)
    progress.eval_seconds += eval_seconds
    pace.eval_seconds = eval_seconds
    progress.compile_seconds += programs.compile_seconds - compiled_before
    compiled_before = programs.compile_seconds  # saved with the progress at every checkpoint
    if bar is None:  # after the first chunk and evaluation, which include compilation
      _log_estimate(chunk_seconds + eval_seconds, chunk, total, progress.step, spe)
      bar = _progress_bar(settings, progress.epoch)
    records = _records(specs, progress.status, metrics, minibatch_loss, progress, spec,
                       settings)
    history.extend(records)
    on_eval(records)

    active = [st for st in progress.status if not st.diverged]
    if progress.extra_left is not None:
      progress.extra_left -= chunk
    elif not active:  # every member diverged: nothing left to train
      progress.extra_left = 0
    elif settings.stop_when_memorized and all(st.steps_to_memorize is not None for st in active):
      progress.extra_left = settings.extra_epochs * spe
    progress.done = ((progress.extra_left is not None and progress.extra_left <= 0)
                     or progress.step >= total)
    if after_eval(state, progress) and not progress.done:
      interrupted = True
      break
  if bar is not None:
    bar.close()
  return FitResult(state, progress, history, progress.step - start_step, interrupted)


def _traced_chunk(programs, state, members, inputs, step: int, chunk: int, steps: int,
                  directory: str) -> TrainState:
  """A chunk whose first `steps` steps run under jax.profiler's trace (TensorBoard's profile
  plugin or Perfetto read `directory`)."""
  traced = min(steps, chunk)
  if traced < steps:
    logging.warning("profile_steps: %d is more than the %d steps to the next evaluation "
                    "point; tracing %d", steps, chunk, traced)
  logging.info("profile: tracing steps %d-%d into %s", step + 1, step + traced, directory)
  with jax.profiler.trace(directory):
    state = jax.block_until_ready(programs.train_chunk(state, members, inputs, step, traced))
  if chunk > traced:
    state = jax.block_until_ready(programs.train_chunk(state, members, inputs, step + traced,
                                                       chunk - traced))
  return state


def device_data(train_images, test_images, mean, std, mesh) -> DeviceData:
  """Puts the uint8 dataset on every device of the mesh once (replicated)."""
  return DeviceData(*sharding.place((train_images, test_images, np.asarray(mean, np.float32),
                                     np.asarray(std, np.float32)), sharding.replicated(mesh)))


__all__ = ["FitResult", "FitSettings", "MemberStatus", "Pace", "Progress", "device_data",
           "epochs_of", "fit", "stop_reason"]
