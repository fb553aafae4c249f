"""Preemption-safe orbax checkpoints of a run: exact resume, fallback past a corrupt one.

A checkpoint (one per save, under WORKDIR/checkpoints/STEP: the steps trained) holds the
stacked member TrainState (params, batch-norm statistics, optimizer state, step, divergence
flags), a JSON item with the loop's Progress (step, epoch, per-member bookkeeping, timings),
the number of metrics.jsonl lines written so far, the config it belongs to and a content
fingerprint of the state. No RNG state is needed: every random draw is a function of a
member's seed and the epoch or step.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shutil
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import logging

from rethinking_jax.base import sections
from rethinking_jax.base.errors import UserError, require
from rethinking_jax.engine import program

CHECKPOINT_DIR = "checkpoints"


class SaveFailed(OSError):
  """A background save failed (a full disk, a file-size limit, ...): the run stops at once,
  its partial checkpoint removed, its last complete one kept. An OSError with the cause's
  errno and the checkpoint folder, reported in one line like any disk fault."""


# tensorstore names the operating system's error inside its own message.
_OS_ERROR = re.compile(r"os_error_code='?(\d+)|\[Errno (\d+)\]")


def _save_failed(err: BaseException, directory: str) -> SaveFailed:
  """`err` (orbax's or tensorstore's exception of a failed save) as a SaveFailed."""
  text = str(err)
  found = _OS_ERROR.search(text)
  code = (int(found.group(1) or found.group(2)) if found else
          errno.ENOSPC if "No space left on device" in text else errno.EIO)
  return SaveFailed(code, os.strerror(code), directory)


# Checkpoints (WORKDIR/checkpoints): rerunning a command resumes its run exactly; how it saves
# may change on resume.
SECTION = sections.Section("checkpoint", {
    # at the first evaluation point this many epochs after the last
    "checkpoint_every_epochs": 10,
    "checkpoints_to_keep": 2,
    "restart": False,              # True: discard the workdir's previous run and start fresh
}, resume_may_change=frozenset({"checkpoint_every_epochs", "checkpoints_to_keep", "restart"}))


def check_config(c) -> None:
  """The checkpoint fields: how often, how many kept."""
  require(c.checkpoint_every_epochs >= 0,
          f"checkpoint_every_epochs: {c.checkpoint_every_epochs} must be >= 0 (0 = only at "
          "the end and on SIGTERM/SIGINT)")
  require(c.checkpoints_to_keep >= 1,
          f"checkpoints_to_keep: {c.checkpoints_to_keep} must be >= 1")


def clear(workdir: str) -> None:
  """Removes a previous run's checkpoints and outputs from `workdir` (restart=True)."""
  shutil.rmtree(os.path.join(workdir, CHECKPOINT_DIR), ignore_errors=True)
  for name in ("config.json", "metrics.jsonl", "summary.json", "report.md", "curves.png"):
    if os.path.exists(os.path.join(workdir, name)):
      os.remove(os.path.join(workdir, name))


def _canonical_leaves(state) -> list:
  """The leaves ordered by their path of names, so that a TrainState and the plain dict a
  target-free restore returns give the same list."""
  def name(key):
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        return str(getattr(key, attr))
    return str(key)

  leaves = jax.tree_util.tree_flatten_with_path(state)[0]
  return [x for _, x in sorted((("/".join(map(name, path)), x) for path, x in leaves),
                               key=lambda item: item[0])]


@jax.jit
def _fingerprint(leaves: list) -> jax.Array:
  """uint32 [leaves, 2]: two position-weighted sums of every leaf's bits, mod 2^32.

  Integer sums are exact in any order, so the fingerprint is the same on any device layout
  or host count, and computed where the state lives (no copy to the host). An odd weight per
  position makes a change of any one word change the first sum; the second sum uses other
  weights, so two changes that cancel in one rarely cancel in both.
  """
  rows = []
  for x in leaves:
    x = jnp.asarray(x)
    if x.dtype == jnp.bool_:
      bits = x.astype(jnp.uint32)
    elif x.dtype.itemsize == 2:
      bits = jax.lax.bitcast_convert_type(x, jnp.uint16).astype(jnp.uint32)
    else:
      bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    bits = bits.reshape(-1)
    i = jnp.arange(bits.shape[0], dtype=jnp.uint32)
    rows.append(jnp.stack([jnp.sum(bits * (2 * i + 1), dtype=jnp.uint32),
                           jnp.sum((bits ^ jnp.uint32(0x9E3779B9)) * (i * 0x2545F491 | 1),
                                   dtype=jnp.uint32)]))
  return jnp.stack(rows)


def fingerprint(state) -> str:
  """The content digest a checkpoint's meta records and a restore checks (hex)."""
  return np.asarray(jax.device_get(_fingerprint(_canonical_leaves(state))),
                    np.uint32).tobytes().hex()


class CorruptCheckpoint(Exception):
  """A checkpoint restored, but its content differs from what was saved."""


def _verified(restored):
  """`restored` if its state has the fingerprint its meta recorded (checkpoints written
  before fingerprints existed have none and are taken as they are)."""
  expected = restored.meta.get("fingerprint")
  if expected is not None and fingerprint(restored.state) != expected:
    raise CorruptCheckpoint("its data changed since it was saved (content fingerprint "
                            "mismatch)")
  return restored


# The layout of program.TrainState a checkpoint holds (its meta's "state_format"). 1: opt_state was
# optax.trace's TraceState alone (before optax.sgd); 2: optax.sgd's (TraceState,
# ScaleByScheduleState); 3: loss_sum added. A checkpoint of an older layout is restored in it
# and upgraded.
STATE_FORMAT = 3


class _StateBeforeLossSum(NamedTuple):
  """program.TrainState of layouts 1 and 2 (the same field names, so orbax matches them)."""

  step: Any
  params: Any
  batch_stats: Any
  opt_state: Any
  nonfinite: Any


def legacy_state(state: program.TrainState, state_format: int):
  """`state` (concrete or abstract) in an older layout (the target to restore one into)."""
  if state_format not in (1, 2):
    raise ValueError(f"state_format: {state_format}; allowed: 1, 2, {STATE_FORMAT}")
  old = _StateBeforeLossSum(state.step, state.params, state.batch_stats, state.opt_state,
                            state.nonfinite)
  return old._replace(opt_state=state.opt_state[0]) if state_format == 1 else old


def upgrade_state(state, state_format: int) -> program.TrainState:
  """A state restored in layout `state_format`, in today's: the same numbers (the schedule's
  step count is the state's step; nothing summed into loss_sum yet, as at every save)."""
  if state_format not in (1, 2):
    raise ValueError(f"state_format: {state_format}; allowed: 1, 2, {STATE_FORMAT}")
  if state_format == 1:
    state = state._replace(opt_state=(state.opt_state, optax.ScaleByScheduleState(
        count=jnp.copy(state.step))))
  return program.TrainState(state.step, state.params, state.batch_stats, state.opt_state,
                            state.nonfinite, loss_sum=jnp.zeros_like(state.step, jnp.float32))


def _state_format(meta: dict) -> int:
  """The TrainState layout a checkpoint holds (absent: 1, written before layouts counted)."""
  return int(meta.get("state_format", 1))


class RunCheckpointer:
  """Asynchronous orbax CheckpointManager over the run's state and progress.

  A checkpoint whose meta names an older TrainState layout (STATE_FORMAT) is
  restored in that layout and upgraded (legacy_state, upgrade_state), so a
  run saved before a layout change resumes with the same numbers.
  """

  def __init__(self, workdir: str, keep: int = 2):
    self.directory = os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, state, meta: dict) -> None:
    """Saves `state` (a copy the caller will not donate) after `step` steps, with `meta` and
    its fingerprint."""
    meta = {**meta, "fingerprint": fingerprint(state), "state_format": STATE_FORMAT}
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    # orbax first waits for the previous save, and raises its failure here
    self._finish(lambda: self.manager.save(step, args=args, force=True))

  def restore_latest(self, abstract_state):
    """(state, meta) of the newest checkpoint that restores; None when there is none.

    A checkpoint that fails to restore (partial, corrupt) or whose content differs from what
    was saved (its fingerprint) is skipped with a warning and removed, so that the resumed
    run can save that epoch again.
    """
    self.manager.reload()
    unreadable = []
    restored = None
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        restored = self._restore(step, abstract_state)
        break
      except UserError:
        raise  # a checkpoint of a newer layout is not corrupt: never removed
      except Exception as err:  # noqa: BLE001 -- any unreadable checkpoint: try an older one
        unreadable.append(step)
        logging.warning("checkpoint at step %d in %s is unreadable (%s: %s); trying an "
                        "older one", step, self.directory, type(err).__name__,
                        str(err).splitlines()[0][:200] if str(err) else "")
    for step in unreadable:
      shutil.rmtree(os.path.join(self.directory, str(step)), ignore_errors=True)
    if unreadable:
      self.manager.reload()
    if restored is None:
      if unreadable:
        logging.warning("no valid checkpoint in %s; starting fresh", self.directory)
      return None
    return restored

  def restore_at(self, step: int, abstract_state):
    """(state, meta) of the checkpoint saved after `step` steps, its fingerprint checked."""
    return self._restore(step, abstract_state)

  def _restore(self, step: int, abstract_state):
    """(state, meta) at `step` in today's layout: the meta first, to learn the layout."""
    current = STATE_FORMAT
    fmt = _state_format(self.manager.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore())).meta)
    if fmt > current:
      raise UserError(f"workdir: its checkpoint at step {step} was written by a newer "
                      f"rethinking_jax (state format {fmt}; this one reads up to {current});"
                      " upgrade, or use --config.restart=True")
    if fmt != current:
      abstract_state = legacy_state(abstract_state, fmt)
    restored = _verified(self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore())))
    state, meta = restored.state, restored.meta
    if fmt != current:
      logging.info("upgrading the checkpoint at step %d from state format %d to %d", step,
                   fmt, current)
      state = upgrade_state(state, fmt)
    return state, meta

  def check(self) -> None:
    """Raises SaveFailed when the last background save failed, so that a run never trains
    on without the checkpoint it believes it has."""
    if not self.manager.is_saving_in_progress():
      self._finish(self.manager.check_for_errors)

  def close(self) -> None:
    self._finish(self.manager.wait_until_finished)
    self.manager.close()

  def _finish(self, wait) -> None:
    """Runs orbax's `wait`; a failed save becomes SaveFailed, its partial folder removed."""
    try:
      wait()
    except Exception as err:  # noqa: BLE001 -- orbax raises the save's own exception types
      for partial in glob.glob(os.path.join(self.directory, "*.orbax-checkpoint-tmp*")):
        shutil.rmtree(partial, ignore_errors=True)
      raise _save_failed(err, self.directory) from err


def restore_member(workdir: str, member: int, step: int | None = None) -> dict:
  """A trained member of a run, for other tools (fooling images, reports), from its newest
  checkpoint (or the one saved after `step` steps).

  Returns {"params", "batch_stats", "model", "config", "step", "epoch", "label",
  "input_shape", "num_members"}: the member's parameters and batch-norm statistics as numpy
  trees, the Flax model that trained them (same batch-norm settings and compute dtype) to
  apply them with (`model.apply({"params": p, "batch_stats": s}, x)`), the run's config
  dict, where the checkpoint was saved and the member's label.
  """
  from rethinking_jax import models

  directory = os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)
  if not os.path.isdir(directory):
    raise UserError(f"workdir: no checkpoints in {directory}; train a run there first")
  with ocp.CheckpointManager(directory) as manager:
    steps = sorted(manager.all_steps(), reverse=True) if step is None else [step]
    if not steps:
      raise UserError(f"workdir: no checkpoints in {directory}")
    last_error = None
    for step in steps:
      try:
        restored = _verified(manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore())))
        break
      except Exception as err:  # noqa: BLE001
        last_error = err
    else:
      raise UserError(f"workdir: no readable checkpoint in {directory} ({last_error})")
  meta, state = restored.meta, restored.state
  num_members = len(meta["progress"]["status"])
  if not 0 <= member < num_members:
    raise UserError(f"member: {member} is out of range; allowed: 0..{num_members - 1}")
  take = lambda tree: jax.tree.map(lambda x: np.asarray(x)[member], tree)
  config = meta["config"]
  model = models.from_config(config, meta["num_classes"])
  state = state if isinstance(state, dict) else state._asdict()
  progress = meta["progress"]
  return {"params": take(state["params"]), "batch_stats": take(state.get("batch_stats") or {}),
          "model": model, "config": config, "epoch": progress["epoch"],
          "step": progress.get("step", int(state["step"][member])),
          "label": meta["labels"][member], "input_shape": tuple(meta["input_shape"]),
          "num_members": num_members}
