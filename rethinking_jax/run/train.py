"""train_and_evaluate(config, workdir): one run's lifecycle, from a config to its outputs in
the workdir -- resume, signals, checkpoint cadence, outputs (the run itself is assembled by
rethinking_jax/engine/assemble.py).

Outputs (a stable contract: docs/running.md): config.json, metrics.jsonl, summary.json, report.md,
curves.png. Everything that can fail because of user input is checked before the workdir is
touched.
"""

from __future__ import annotations

import contextlib
import json
import os

import jax
import jax.numpy as jnp
from absl import logging

from rethinking_jax import models
from rethinking_jax.base import workdir as workdir_lib
from rethinking_jax.base.errors import UserError
from rethinking_jax.base.stop_signals import Interrupted, StopSignals
from rethinking_jax.engine import assemble, checkpoints, loop, sharding, xla_cpu
from rethinking_jax.reports import files, markdown, writers
from rethinking_jax.run import configuration


@jax.jit
def _copy(state):
  """A copy of the whole state as one program (jnp.copy leaf by leaf compiles one each)."""
  return jax.tree.map(jnp.copy, state)


class _Outputs:
  """What each evaluation point writes: metrics.jsonl (its first `metrics_lines` lines kept
  on resume), the same numbers to the config's writers (reports/writers.py: TensorBoard,
  W&B), the history the report is drawn from, and a log line. Files only where `enabled`
  (multi-host: process 0)."""

  def __init__(self, config_dict: dict, workdir: str, metrics_lines: int, step: int | None,
               enabled: bool, metric_writers=()):
    self.writer = files.MetricsWriter(os.path.join(workdir, "metrics.jsonl"),
                                      keep_lines=metrics_lines, enabled=enabled)
    self.writers = writers.for_run(config_dict, workdir, step, enabled, metric_writers)
    self.writers.write_hparams(config_dict)
    self.history = list(self.writer.kept)

  def on_eval(self, records):
    self.writer.write(records)
    self.writers.write_scalars(records[0]["step"], writers.scalars_of(records))
    self.writers.flush()
    self.history.extend(records)
    r0 = records[0]
    shown = lambda x: "-" if x is None else f"{x:.3f}"  # test: not measured at this point
    accs = " ".join(f"{shown(r['train_acc'])}/{shown(r['test_acc'])}" for r in records)
    logging.info("epoch %s step %d | train/test acc per member: %s", r0["epoch"], r0["step"],
                 accs)

  def close(self):
    self.writer.close()
    self.writers.close()


def _checkpoint_meta(config_dict, run: assemble.Run, progress: loop.Progress, metrics_lines: int,
                     metrics_lost: int) -> dict:
  return {"progress": progress.to_json(), "metrics_lines": metrics_lines,
          "metrics_lines_lost": metrics_lost, "config": config_dict,
          "num_classes": run.dataset.num_classes,
          "input_shape": list(run.programs.spec.input_shape),
          "labels": [s.label for s in run.specs]}


def _resume(checkpointer: checkpoints.RunCheckpointer, run: assemble.Run, config_dict: dict):
  """(state, progress, metrics lines kept, metrics lines lost) of the workdir's latest valid
  checkpoint, restored onto this run's mesh whatever the saving one was; (None, None, 0, 0)
  without one. A checkpoint of another config is a UserError."""
  by_member = sharding.member_sharded(run.programs.spec.mesh)
  abstract_state = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=by_member),
      run.programs.abstract_state(run.members))
  restored = checkpointer.restore_latest(abstract_state)
  if restored is None:
    return None, None, 0, 0
  state, meta = restored
  diffs = configuration.config_differences(meta["config"], config_dict)
  if diffs:
    checkpointer.close()
    raise UserError(f"workdir: its checkpoint belongs to a different config "
                    f"({'; '.join(diffs)}); use a new --workdir or --config.restart=True")
  progress = loop.Progress.from_json(meta["progress"], run.programs.spec.steps_per_epoch)
  logging.info("resuming from the checkpoint at epoch %s (step %d)", progress.epoch,
               progress.step)
  return state, progress, meta["metrics_lines"], meta.get("metrics_lines_lost", 0)


def train_and_evaluate(config, workdir: str, resolved=None, metric_writers=()) -> dict:
  """Trains every member of `config`, writes the outputs to `workdir`, returns the summary;
  `metric_writers`: writers of one's own (reports/writers.MetricWriter) given every
  evaluation point's scalars beside those the config asks for.

  Rerunning the same command on the same workdir resumes from the latest valid checkpoint and
  ends with exactly the numbers and outputs of an uninterrupted run. Every user mistake and
  predictable fault (bad config, unusable workdir, another process on it, a checkpoint of
  another config) stops with a UserError before anything in the workdir is written.
  """
  resolved = resolved or configuration.validate(config)  # once per run
  workdir_lib.check_writable(workdir, dirs=(checkpoints.CHECKPOINT_DIR,))
  run = assemble.prepare(config, resolved)
  writes_outputs = jax.process_index() == 0  # multi-host: one process writes the outputs
  with workdir_lib.hold(workdir) if writes_outputs else contextlib.nullcontext():
    return _train_in(config, workdir, run, writes_outputs, metric_writers)


def _train_in(config, workdir: str, run: assemble.Run, writes_outputs: bool,
              metric_writers=()) -> dict:
  specs, dataset = run.specs, run.dataset
  config_dict = json.loads(config.to_json())
  if config.restart:
    if writes_outputs:
      checkpoints.clear(workdir)
    sharding.sync("restart")  # no process restores before process 0 has cleared
  else:
    configuration.check_workdir(workdir, config_dict)
  logging.info("%d members of %s on %s (%d train / %d test, %s), %d steps/epoch, %s loop, "
               "on %s", len(specs), config.model, dataset.name, dataset.num_train,
               dataset.num_test, "x".join(map(str, dataset.image_shape)),
               run.programs.spec.steps_per_epoch, run.programs.step_loop,
               jax.devices()[0].platform)

  checkpointer = checkpoints.RunCheckpointer(workdir, keep=config.checkpoints_to_keep)
  state, progress, metrics_lines, metrics_lost = _resume(checkpointer, run, config_dict)
  if writes_outputs:  # only now: every check above may refuse the run
    files.write_json(os.path.join(workdir, "config.json"), config_dict)

  outputs = _Outputs(config_dict, workdir, metrics_lines, progress.step if progress else None,
                     writes_outputs, metric_writers)
  metrics_lost += outputs.writer.lost
  last_saved = progress.step if progress else 0
  save_every = config.checkpoint_every_epochs * run.programs.spec.steps_per_epoch

  pace = loop.Pace()
  with StopSignals(lambda: f"at the next evaluation point, {pace.wait()}") as signals:

    def after_eval(state, progress):
      nonlocal last_saved
      checkpointer.check()  # the previous save, finished in the background, succeeded
      due = save_every > 0 and progress.step - last_saved >= save_every
      stop = sharding.any_process(signals.received is not None)  # every host stops together
      if due or progress.done or stop:
        # A copy: the live state is donated to the next chunk while the save is in flight.
        checkpointer.save(progress.step, _copy(state),
                          _checkpoint_meta(config_dict, run, progress, outputs.writer.lines,
                                           metrics_lost))
        last_saved = progress.step
      return stop

    try:
      profile = ((config.profile_steps, os.path.join(workdir, "profile"))
                 if config.get("profile_steps", 0) and jax.process_index() == 0 else None)
      result = loop.fit(run.programs, run.specs, run.members, run.inputs, run.settings,
                        outputs.on_eval, state=state, progress=progress,
                        after_eval=after_eval, pace=pace, profile=profile)
    finally:
      outputs.close()
      checkpointer.close()
      run.close()  # a stream's reader threads
  if result.interrupted:
    raise Interrupted(f"stopped by {signals.received or 'another process'} at epoch "
                      f"{result.epochs}; checkpoint saved in {checkpointer.directory}; rerun "
                      "the same command to resume")

  summary = make_summary(config, dataset, specs, result, os.path.basename(workdir.rstrip("/")),
                         run.programs.spec.steps_per_epoch, run.programs.spec.mesh,
                         run.inputs, metrics_lost, run.programs.strategy)
  if not writes_outputs:
    return summary
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  markdown.write_run_report(workdir, config_dict, summary, outputs.history)
  return summary


def make_summary(config, dataset, specs, result: loop.FitResult, name: str,
                 steps_per_epoch: int, mesh, inputs, metrics_lines_lost: int = 0,
                 strategy: str | None = None) -> dict:
  """summary.json's content; `inputs`: the run's (its input path and how many training
  examples an evaluation measured)."""
  stop, reason = loop.stop_reason(result.status, result.epochs, config.num_epochs)
  run = {"name": name, "dataset": dataset.name, "num_train": dataset.num_train,
         "num_test": dataset.num_test, "model": config.model,
         "input_pipeline": inputs.pipeline,
         "train_eval_examples": inputs.train_eval_examples,
         "member_strategy": strategy or config.member_strategy,  # auto resolved
         "layer_impl": models.layer_impl_for(config.model, config.layer_impl),  # resolved
         "conv_impl": (xla_cpu.in_effect() if models.record(config.model).convolutional
                       and jax.default_backend() == "cpu" else None),  # what XLA ran
         "batch_size": config.batch_size,
         "epochs": result.epochs, "steps": result.progress.step,
         "sessions": result.progress.sessions,
         "stop": stop, "stop_reason": reason,
         "memorized": sum(st.steps_to_memorize is not None and not st.diverged
                          for st in result.status),
         "diverged": sum(st.diverged for st in result.status),
         "corrupt_test_labels": bool(config.corrupt_test_labels),
         "metrics_lines_lost": metrics_lines_lost,
         "train_seconds": round(result.train_seconds, 3),
         "eval_seconds": round(result.eval_seconds, 3),
         "compile_seconds": round(result.compile_seconds, 3),
         "wall_seconds": round(result.train_seconds + result.eval_seconds
                               + result.compile_seconds, 3),
         "examples_per_second": round(result.progress.step * config.batch_size
                                      * len(specs) / max(result.train_seconds, 1e-9), 1),
         "device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform,
         "cpu": xla_cpu.cpu_model(), "cpu_isa": xla_cpu.cpu_isa(), "devices": jax.device_count(),
         "processes": jax.process_count(),
         "mesh": dict(mesh.shape)}
  members = [loop.member_summary(m, spec, st.final or {}, st.best_test_acc,
                                 st.steps_to_memorize, st.epochs_to_memorize, st.diverged)
             for m, (spec, st) in enumerate(zip(specs, result.status, strict=True))]
  return {"run": run, "members": members}
