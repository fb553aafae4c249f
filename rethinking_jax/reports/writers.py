"""The writer seam: every evaluation point's numbers go, beside metrics.jsonl (the run's own
record, reports/files.MetricsWriter), to each MetricWriter the config asks for -- TensorBoard
(`tensorboard=True`, through tensorboardX: no TensorFlow), Weights & Biases (`wandb_project=`),
or one of your own -- through clu's metric-writer interface. One tag per metric and member,
`METRIC/MEMBER_LABEL` (tag()), at the training step, so a dashboard draws every member of a
metric in one chart."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from rethinking_jax.base import sections
from rethinking_jax.base.atomic_files import write_text
from rethinking_jax.base.errors import UserError
from rethinking_jax.engine.loop import METRIC_NAMES

SCALARS = (*METRIC_NAMES, "minibatch_loss", "learning_rate")
WANDB_MODES = ("offline", "online")


class MetricWriter(Protocol):
  """clu.metric_writers.MetricWriter's shape: what a run needs of a metrics sink."""

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None: ...

  def write_hparams(self, hparams: Mapping[str, Any]) -> None: ...

  def flush(self) -> None: ...

  def close(self) -> None: ...


def tag(metric: str, label: str) -> str:
  """`METRIC/LABEL` with the characters TensorBoard does not allow in a tag made `_` (as
  tensorboardX would, but predictably): corrupt_labels(p=0.5) -> corrupt_labels_p_0.5_."""
  return metric + "/" + re.sub(r"[^-/.\w]", "_", label)


def scalars_of(records: Sequence[Mapping]) -> dict[str, float]:
  """One evaluation point's per-member records as {METRIC/LABEL: value}, the metrics it
  measured (a point that measured no test split has no test scalars)."""
  return {tag(key, r["label"]): r[key] for r in records for key in SCALARS
          if r.get(key) is not None}


# Where a run's metrics go besides metrics.jsonl; may change on resume.
SECTION = sections.Section("writers", {
    # True: TensorBoard scalars in WORKDIR/tensorboard too (the `tensorboard` extra:
    # tensorboardX, no TensorFlow)
    "tensorboard": False,
    "wandb_project": "",  # a name: the run in Weights & Biases too (the `wandb` extra),
    "wandb_mode": "offline",  # offline (WORKDIR/wandb; `wandb sync` it) | online
}, resume_may_change=frozenset({"tensorboard", "wandb_project", "wandb_mode"}))


def check_config(c) -> None:
  """The writers' fields: each sink needs its package; W&B online needs a key (a run never
  stops at a login prompt)."""
  if c.get("tensorboard"):
    if importlib.util.find_spec("tensorboardX") is None:
      raise UserError("tensorboard: True needs tensorboardX (pip install -e '.[tensorboard]'); "
                      "allowed without it: False")
  if not c.get("wandb_project", ""):
    return
  mode = c.get("wandb_mode", "offline")
  if mode not in WANDB_MODES:
    raise UserError(f"wandb_mode: {mode!r}; allowed: {', '.join(WANDB_MODES)}")
  if not re.fullmatch(r"[-\w.]{1,128}", c.wandb_project):
    raise UserError(f"wandb_project: {c.wandb_project!r}; allowed: 1-128 letters, digits, "
                    "'-', '_', '.' (or \"\": no W&B)")
  if importlib.util.find_spec("wandb") is None:
    raise UserError("wandb_project: a W&B run needs wandb (pip install -e '.[wandb]'); allowed "
                    "without it: \"\" (no W&B)")
  if mode == "online" and not (os.environ.get("WANDB_API_KEY")
                               or _has_netrc_entry("api.wandb.ai")):
    raise UserError("wandb_mode: 'online' needs a W&B key (WANDB_API_KEY or `wandb login`); "
                    "allowed without one: offline (then `wandb sync WORKDIR/wandb/offline-run-*`)")


def _has_netrc_entry(host: str) -> bool:
  import netrc

  try:
    return netrc.netrc().authenticators(host) is not None
  except (OSError, netrc.NetrcParseError):
    return False


class TensorBoardWriter:
  """Scalars as TensorBoard events in WORKDIR/tensorboard; a resumed run first drops the
  events at or after the step it resumes from (tensorboardX's purge_step), so a rerun of steps
  that a crash lost does not draw them twice."""

  def __init__(self, workdir: str, resume_step: int | None):
    from tensorboardX import SummaryWriter

    self._writer = SummaryWriter(os.path.join(workdir, "tensorboard"),
                                 purge_step=None if resume_step is None else resume_step + 1)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    for name, value in scalars.items():
      self._writer.add_scalar(name, value, step)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    self._writer.add_text("config", "```\n" + json.dumps(hparams, indent=1) + "\n```")

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


class WandbWriter:
  """A Weights & Biases run in WORKDIR/wandb, offline unless `mode` is online (then
  `wandb sync WORKDIR/wandb/offline-run-*` uploads it). A resumed run continues the same W&B
  run (its id kept in WORKDIR/wandb/run_id); `restart` begins a new one."""

  def __init__(self, workdir: str, project: str, mode: str, restart: bool):
    import wandb

    folder = os.path.join(workdir, "wandb")
    os.makedirs(folder, exist_ok=True)
    id_file = os.path.join(folder, "run_id")
    if restart or not os.path.exists(id_file):
      write_text(id_file, secrets.token_hex(6) + "\n")  # W&B ids: [a-z0-9]
    with open(id_file) as f:
      run_id = f.read().strip()
    self._run = wandb.init(project=project, dir=workdir, id=run_id, resume="allow", mode=mode,
                           name=os.path.basename(os.path.abspath(workdir)),
                           settings=wandb.Settings(silent=True))

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    self._run.log(dict(scalars), step=step)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    self._run.config.update(dict(hparams), allow_val_change=True)

  def flush(self) -> None:
    """W&B streams what it is given."""

  def close(self) -> None:
    self._run.finish()


class MultiWriter:
  """Several writers as one (clu's MultiWriter)."""

  def __init__(self, writers: Sequence[MetricWriter]):
    self.writers = list(writers)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    for writer in self.writers:
      writer.write_scalars(step, scalars)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    for writer in self.writers:
      writer.write_hparams(hparams)

  def flush(self) -> None:
    for writer in self.writers:
      writer.flush()

  def close(self) -> None:
    for writer in self.writers:
      writer.close()


def for_run(config, workdir: str, resume_step: int | None, enabled: bool,
            own: Sequence[MetricWriter] = ()) -> MultiWriter:
  """The writers `config` (a ConfigDict or its dict) asks for, then `own`; none where
  `enabled` is False (multi-host: processes other than the first)."""
  if not enabled:
    return MultiWriter([])
  writers: list[MetricWriter] = []
  if config.get("tensorboard", False):
    writers.append(TensorBoardWriter(workdir, resume_step))
  if config.get("wandb_project", ""):
    writers.append(WandbWriter(workdir, config["wandb_project"], config["wandb_mode"],
                               bool(config["restart"])))
  return MultiWriter(writers + list(own))
