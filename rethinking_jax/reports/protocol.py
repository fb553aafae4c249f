"""The paper's protocol as data (docs/PROTOCOL.md §1-5), and every field in which a run differs.

The CIFAR10 protocol every study starts from (each study adds its own values:
rethinking_jax/studies); a report compares each run's resolved config (and the dataset it
actually read) with it, field by field. What the paper leaves open (batch
size, decay interval, batch-norm settings, ImageNet's preprocessing: docs/PROTOCOL.md's [default]s)
is the project's choice: it is listed in the table all the same, since a reader compares
with those values too.
"""

from __future__ import annotations

from rethinking_jax import models
from rethinking_jax.data import inputs
from rethinking_jax.engine import loop, members, program
from rethinking_jax.reports import paper

# CIFAR10, every figure and table but Table 2 (docs/PROTOCOL.md §1-4).
CIFAR10 = {
    "num_train": 50_000,            # the whole training split
    "num_test": 10_000,
    "crop_size": 28,                # center 28x28 (random 28x28 for "random crop")
    "batch_size": 128,              # [default]
    "momentum": 0.9,
    "lr_decay_rate": 0.95,          # per epoch
    "lr_decay_every_epochs": 1.0,   # [default]
    "memorize_threshold": 1.0,      # "converged" = 100% train accuracy
    "dropout_rate": 0.0,
    "corrupt_test_labels": False,   # test labels stay true
    "compute_dtype": "float32",
    "eval_train_examples": 0,       # train accuracy over the whole training set
    "eval_full_every": 1,           # ... at every evaluation point (> 1: the same convergence
    #                                 step, but curves between full points over part of it)
    "num_classes": "all",           # the dataset's own classes (0: no folding)
}


def cifar10(config: dict) -> dict:
  """{field: the paper's value} for a CIFAR10 run (every table and figure but Table 2, and a
  lone run): the learning rate and weight decays of its model, and for a batch-norm model
  the batch-norm settings. A study adds its own."""
  model = config.get("model")
  record = models.RECORDS.get(model)
  batch_norm = ({"bn_momentum": models.defaults.BN_MOMENTUM,  # [default]
                 "bn_epsilon": models.defaults.BN_EPSILON} if record and record.batch_norm else {})
  return {**CIFAR10, **batch_norm, "learning_rate": models.PAPER_LEARNING_RATES.get(model),
          "weight_decays": {0.0, paper.WEIGHT_DECAY.get(model, 0.0)}}


def _default(field: str):
  """The default of a field a protocol names (an older run's config may lack it: it had its
  default), from the section that declares it."""
  for section in (inputs.SECTION, models.SECTION, members.SECTION, program.SECTION,
                  loop.SECTION):
    if field in section.fields:
      return section.defaults()[field]
  return None


def _value(config: dict, summary: dict | None, field: str):
  if field in ("num_train", "num_test"):  # the sizes read, known once the run finished
    return (summary or {}).get("run", {}).get(field)
  if field == "learning_rate":
    return config.get("learning_rate") or models.PAPER_LEARNING_RATES.get(config.get("model"))
  if field == "weight_decays":
    members = (summary or {}).get("members") or []
    if members:
      return {float(m["weight_decay"]) for m in members}
    text = config.get("weight_decays") or str(config.get("weight_decay", 0.0))
    return {float(v) for v in str(text).split(",") if v.strip()}
  return config.get(field, _default(field))


def _same(ours, theirs) -> bool:
  if isinstance(theirs, set):
    ours = ours if isinstance(ours, set) else {ours}
    return all(any(abs(float(o) - float(t)) < 1e-12 for t in theirs) for o in ours)
  if isinstance(theirs, float) and isinstance(ours, (int, float)):
    return abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs))
  return ours == theirs


def _show(value) -> str:
  if isinstance(value, set):
    return "{" + ", ".join(f"{v:g}" for v in sorted(value)) + "}"
  if isinstance(value, int) and not isinstance(value, bool) and value >= 10_000:
    return f"{value:,}"
  return f"{value:g}" if isinstance(value, float) else str(value)


def _decay_steps(every_epochs: float, num_train: int | None, batch_size: int) -> int | None:
  """The learning-rate decay interval in steps, as the engine computes it (None until the
  number of training examples is known): a subset keeps the paper's interval by decaying
  every 50,000 / N of its epochs (configs/common.on_subset)."""
  if not num_train:
    return None
  return program.lr_interval_steps(every_epochs,
                                   program.steps_per_epoch(num_train, batch_size))


def differences(paper_protocol: dict, config: dict, summary: dict | None = None) -> list[str]:
  """'field ours (paper theirs)' for every field of `paper_protocol` (a study's protocol for
  this run, e.g. cifar10(config)) in which the run differs."""
  out = []
  for field, theirs in paper_protocol.items():
    if theirs is None:
      continue
    ours = _value(config, summary, field)
    if ours is None:
      continue
    if field == "crop_size" and ours == 0:
      ours = "none"
    if field == "num_classes" and ours == 0:
      ours = "all"
    if field == "lr_decay_every_epochs":  # the schedule is a function of the step
      batch = _value(config, summary, "batch_size")
      ours = _decay_steps(ours, _value(config, summary, "num_train"), batch)
      theirs = _decay_steps(theirs, paper_protocol["num_train"], batch)
      if ours is None:
        continue
      field = "lr decay every (steps)"
    if not _same(ours, theirs):
      out.append(f"{field} {_show(ours)} (paper {_show(theirs)})")
  return out
