"""Runs a tiny training run under a given device setup and saves its numbers (for tests).

    python tests/sharding_worker.py OUT.npz DEVICES MESH_SHAPE [--process I --processes N
        --port P] [--workdir DIR --epochs N] [--stream]

DEVICES fake CPU devices per process. With --workdir the run goes through
train_and_evaluate (checkpoints and resume; exit code 3 when a signal stopped it);
otherwise through prepare + fit.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
  p = argparse.ArgumentParser()
  p.add_argument("out")
  p.add_argument("devices", type=int)
  p.add_argument("mesh_shape")
  p.add_argument("--process", type=int, default=0)
  p.add_argument("--processes", type=int, default=1)
  p.add_argument("--port", type=int, default=0)
  p.add_argument("--workdir", default="")
  p.add_argument("--epochs", type=int, default=2)
  p.add_argument("--stream", action="store_true", help="the streaming input path")
  a = p.parse_args()
  os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={a.devices}"
  os.environ["JAX_PLATFORMS"] = "cpu"
  sys.path[:0] = [os.path.dirname(HERE), HERE]
  import jax

  if a.processes > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{a.port}",
                               num_processes=a.processes, process_id=a.process)
  import numpy as np
  from helpers import tiny_config
  from jax.experimental import multihost_utils

  from rethinking_jax.engine import assemble, checkpoints
  from rethinking_jax.run import train

  config = tiny_config(randomizations="random_labels,true_labels,gaussian,random_pixels",
                       seeds="0,1", mesh_shape=a.mesh_shape, num_epochs=a.epochs,
                       checkpoint_every_epochs=1,
                       input_pipeline="stream" if a.stream else "device")
  if a.workdir:
    from absl import logging
    logging.set_verbosity(logging.INFO)
    try:
      train.train_and_evaluate(config, a.workdir)
    except train.Interrupted as err:  # a signal to any process stops every process
      print("interrupted:", err, flush=True)
      sys.exit(3)
    leaves = []
    if jax.process_index() == 0 and a.processes == 1:  # restore_member is a one-process tool
      params = [checkpoints.restore_member(a.workdir, m)["params"] for m in range(8)]
      leaves = [np.stack([jax.tree.leaves(pm)[i] for pm in params])
                for i in range(len(jax.tree.leaves(params[0])))]
    metrics = None
    if jax.process_index() == 0:
      with open(os.path.join(a.workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
      metrics = np.asarray([[r[k] for k in ("train_loss", "train_acc", "test_loss",
                                            "test_acc")] for r in records])
      program_text = ""
  else:
    run = assemble.prepare(config)
    result = run.fit()
    leaves = [np.asarray(multihost_utils.process_allgather(x, tiled=True))
              for x in jax.tree.leaves(result.state.params)]
    metrics = np.asarray([[r[k] for k in ("train_loss", "train_acc", "test_loss", "test_acc")]
                          for r in result.history])
    program_text = run.programs._compiled["chunk"].as_text()
  if jax.process_index() == 0:
    arrays = {f"param_{i}": x for i, x in enumerate(leaves)}
    if metrics is not None:
      arrays["metrics"] = metrics
    if metrics is not None:
      arrays["all_reduces"] = program_text.count("all-reduce")
    np.savez(a.out, devices=jax.device_count(), **arrays)
  print("worker done", jax.device_count(), jax.process_index())


if __name__ == "__main__":
  main()
