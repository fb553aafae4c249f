"""TensorBoard scalars beside metrics.jsonl (config `tensorboard=True`), through tensorboardX:
no TensorFlow. One tag per metric and member, `METRIC/MEMBER_LABEL` (tag()), at the training
step, so TensorBoard draws every member of a metric in one chart."""

from __future__ import annotations

import importlib.util
import os
import re

from rethinking_jax.engine.loop import METRIC_NAMES
from rethinking_jax.errors import UserError

SCALARS = (*METRIC_NAMES, "minibatch_loss", "learning_rate")


def check_available() -> None:
  """Raises the one-line UserError of a run that asks for TensorBoard without tensorboardX."""
  if importlib.util.find_spec("tensorboardX") is None:
    raise UserError("tensorboard: True needs tensorboardX (pip install -e '.[tensorboard]'); "
                    "allowed without it: False")


def check_config(c) -> None:
  """The report's field: `tensorboard` needs tensorboardX."""
  if c.get("tensorboard"):
    check_available()


def tag(metric: str, label: str) -> str:
  """`METRIC/LABEL` with the characters TensorBoard does not allow in a tag made `_` (as
  tensorboardX would, but predictably): corrupt_labels(p=0.5) -> corrupt_labels_p_0.5_."""
  return metric + "/" + re.sub(r"[^-/.\w]", "_", label)


class ScalarWriter:
  """Writes each evaluation point's records as scalars; a resumed run first drops the events
  at or after the step it resumes from (tensorboardX's purge_step), so a rerun of steps that
  a crash lost does not draw them twice."""

  def __init__(self, workdir: str, resume_step: int | None, enabled: bool):
    self._writer = None
    if enabled:
      from tensorboardX import SummaryWriter

      self._writer = SummaryWriter(os.path.join(workdir, "tensorboard"),
                                   purge_step=None if resume_step is None else resume_step + 1)

  def write(self, records) -> None:
    if self._writer is None:
      return
    for record in records:
      for key in SCALARS:
        if record.get(key) is not None:
          self._writer.add_scalar(tag(key, record["label"]), record[key], record["step"])
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
