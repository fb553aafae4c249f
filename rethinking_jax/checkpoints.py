"""Preemption-safe orbax checkpoints of a run: exact resume, fallback past a corrupt one.

A checkpoint (one per saved epoch, under WORKDIR/checkpoints/EPOCH) holds the stacked
member TrainState (params, batch-norm statistics, optimizer state, step, divergence flags) and
a JSON item with the loop's Progress (epoch, per-member bookkeeping, timings), the number of
metrics.jsonl lines written so far and the config it belongs to. No RNG state is needed:
every random draw is a function of a member's seed and the epoch or step.
"""

from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from rethinking_jax.errors import UserError

CHECKPOINT_DIR = "checkpoints"
# Fields a resumed run may change: how long it goes and how it reports (for example to
# train longer), and how it is laid out on devices (the same numbers up to float
# reassociation; for example to continue on a machine with more devices), and how the
# streaming path reads (the same batches whatever the threads).
RUN_LENGTH_FIELDS = frozenset({"num_epochs", "extra_epochs", "stop_when_memorized", "progress",
                               "checkpoint_every_epochs", "checkpoints_to_keep", "restart",
                               "eval_batch_size", "mesh_shape", "distributed",
                               "member_strategy", "step_loop", "stream_workers",
                               "prefetch_batches"})


def comparable(config_dict: dict) -> dict:
  return {k: v for k, v in config_dict.items() if k not in RUN_LENGTH_FIELDS}


def config_differences(saved: dict, current: dict) -> list[str]:
  saved, current = comparable(saved), comparable(current)
  return [f"{k}: {saved.get(k)!r} in the workdir, {current.get(k)!r} now"
          for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]


def check_workdir(workdir: str, config_dict: dict) -> None:
  """Refuses a workdir that holds a run of a different config (one line, what differs)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError):
    return  # an unreadable config.json is rewritten; checkpoints carry their own copy
  diffs = config_differences(saved, config_dict)
  if diffs:
    raise UserError(f"workdir: {workdir} holds a run with a different config ({'; '.join(diffs)});"
                    " use a new --workdir, or --config.restart=True to discard that run")


def clear(workdir: str) -> None:
  """Removes a previous run's checkpoints and outputs from `workdir` (restart=True)."""
  shutil.rmtree(os.path.join(workdir, CHECKPOINT_DIR), ignore_errors=True)
  for name in ("config.json", "metrics.jsonl", "summary.json", "report.md", "curves.png"):
    if os.path.exists(os.path.join(workdir, name)):
      os.remove(os.path.join(workdir, name))


class RunCheckpointer:
  """Asynchronous orbax CheckpointManager over the run's state and progress."""

  def __init__(self, workdir: str, keep: int = 2):
    self.directory = os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def save(self, epoch: int, state, meta: dict) -> None:
    self.manager.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                     meta=ocp.args.JsonSave(meta)),
                      force=True)

  def restore_latest(self, abstract_state):
    """(state, meta) of the newest checkpoint that restores; None when there is none.

    A checkpoint that fails to restore (partial, corrupt) is skipped with a warning and
    removed, so that the resumed run can save that epoch again.
    """
    self.manager.reload()
    unreadable = []
    restored = None
    for epoch in sorted(self.manager.all_steps(), reverse=True):
      try:
        restored = self.manager.restore(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        break
      except Exception as err:  # noqa: BLE001 -- any unreadable checkpoint: try an older one
        unreadable.append(epoch)
        logging.warning("checkpoint at epoch %d in %s is unreadable (%s: %s); trying an "
                        "older one", epoch, self.directory, type(err).__name__,
                        str(err).splitlines()[0][:200] if str(err) else "")
    for epoch in unreadable:
      shutil.rmtree(os.path.join(self.directory, str(epoch)), ignore_errors=True)
    if unreadable:
      self.manager.reload()
    if restored is None:
      if unreadable:
        logging.warning("no valid checkpoint in %s; starting fresh", self.directory)
      return None
    return restored.state, restored.meta

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def restore_member(workdir: str, member: int, epoch: int | None = None) -> dict:
  """A trained member of a run, for other tools (fooling images, reports).

  Returns {"params", "batch_stats", "model", "config", "epoch", "label", "input_shape",
  "num_members"}: the member's
  parameters and batch-norm statistics as numpy trees, the Flax model to apply them with
  (`model.apply({"params": p, "batch_stats": s}, x)`), the run's config dict, the epoch of
  the checkpoint and the member's label.
  """
  from rethinking_jax import models

  directory = os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)
  if not os.path.isdir(directory):
    raise UserError(f"workdir: no checkpoints in {directory}; train a run there first")
  with ocp.CheckpointManager(directory) as manager:
    steps = sorted(manager.all_steps(), reverse=True) if epoch is None else [epoch]
    if not steps:
      raise UserError(f"workdir: no checkpoints in {directory}")
    last_error = None
    for step in steps:
      try:
        restored = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
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
  model = models.build(config["model"], meta["num_classes"],
                       dropout_rate=config.get("dropout_rate", 0.0),
                       bn_momentum=config.get("bn_momentum", 0.999),
                       bn_epsilon=config.get("bn_epsilon", 1e-3))
  state = state if isinstance(state, dict) else state._asdict()
  return {"params": take(state["params"]), "batch_stats": take(state.get("batch_stats") or {}),
          "model": model, "config": config, "epoch": meta["progress"]["epoch"],
          "label": meta["labels"][member], "input_shape": tuple(meta["input_shape"]),
          "num_members": num_members}
