"""A study's suite config (rethinking_jax/studies): its sub-runs, selection by argument,
seeds, a subset, one run per member, :smoke."""

import itertools

import ml_collections

from rethinking_jax import studies
from rethinking_jax.base import fields
from rethinking_jax.configs import default
from rethinking_jax.engine import program
from rethinking_jax.reports import protocol

# The paper's epoch: all 50,000 CIFAR-10 training images (reports/protocol.py). On a subset,
# the schedule and the caps stay counted in its steps (subset=N).
PAPER_TRAIN_EXAMPLES = protocol.CIFAR10["num_train"]


def _positive(parts, key, what):
  """The value of the last `key=N` of `parts` (None when absent), a positive integer."""
  given = [p for p in parts if p.startswith(f"{key}=")]
  if not given:
    return None
  try:
    value = int(given[-1].split("=", 1)[1])
  except ValueError:
    value = 0
  if value < 1:
    raise ValueError(f"config argument {given[-1]!r}: {key}=N takes a positive integer "
                     f"({what})")
  return value


FLAGS = ("smoke", "per_member")  # config arguments that are switches, not selections


def parse_arg(arg):
  """'smoke,inception,seeds=3,subset=10000' -> ({'smoke'}, ['inception'], 3, 10000);
  '' -> (set(), [], 1, None)."""
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  num_seeds = _positive(parts, "seeds", "the members per row, with independent seeds") or 1
  subset = _positive(parts, "subset", "a fixed random N of the training images")
  named = [p for p in parts if p not in FLAGS and not p.startswith(("seeds=", "subset="))]
  return {p for p in parts if p in FLAGS}, named, num_seeds, subset


def per_member(runs: dict, base) -> dict:
  """Each run split into one run per member (randomization x learning rate x weight decay x
  seed), named RUN_KIND[_lrI][_wd]_seedS: each stops at its own member's memorization, where
  one run trains every member until its slowest one memorized (a CPU trains members one after
  another, so the split costs the sum of the members' steps instead of members x the
  slowest's)."""
  out = {}
  for name, o in runs.items():
    field = lambda key, o=o: fields.split(o.get(key, base[key]))
    rates = field("learning_rates") or [""]  # empty: the run's learning_rate
    grid = itertools.product(field("randomizations"), enumerate(rates),
                             field("weight_decays") or [str(o.get("weight_decay",
                                                                  base.weight_decay))],
                             field("seeds"))
    for kind, (i, rate), wd, seed in grid:
      tag = kind.replace(":", "").replace(".", "")
      sub = (f"{name}_{tag}{f'_lr{i}' if len(rates) > 1 else ''}"
             f"{'_wd' if float(wd) else ''}_seed{seed}")
      if sub in out:
        raise ValueError(f"config argument per_member: two members of run {name} would "
                         f"both be named {sub} (more than one nonzero weight decay)")
      out[sub] = {**o, "randomizations": kind, "weight_decays": wd, "seeds": seed,
                  **({"learning_rates": rate} if len(rates) > 1 else {})}
  return out


def on_subset(c, num_train: int) -> None:
  """Trains on a fixed random `num_train` of the training images (the same N images for
  every run that asks for N) and keeps the paper's schedule *per step*: the learning rate
  decays once every 390 steps (the paper's epoch) and `num_epochs` stays a cap in the
  paper's epochs, converted to subset epochs. A decay per subset epoch would decay
  50,000 / N times faster per step and could stop memorization early."""
  subset_steps = program.steps_per_epoch(num_train, c.batch_size)
  if subset_steps < 1:
    raise ValueError(f"config argument subset={num_train}: needs at least batch_size="
                     f"{c.batch_size} images")
  c.num_train = num_train
  paper_steps = program.steps_per_epoch(PAPER_TRAIN_EXAMPLES, c.batch_size)   # 390
  c.lr_decay_every_epochs = paper_steps / subset_steps
  c.num_epochs = -(-c.num_epochs * paper_steps // subset_steps)


def suite(report: str, arg=None):
  """The suite config of study `report` (rethinking_jax/studies), optionally a subset and
  :smoke.

  Selection: an argument that names a run keeps it; one that names a model keeps that
  model's runs; any other keeps the runs whose model starts with it (`table1.py:inception`
  keeps inception_small and inception_small_nobn, `table1.py:inception_small` only the
  first). `seeds=N`: every row trained by N members with independent seeds (the reports
  give mean ± standard deviation), drawn from the study's own seed range. `per_member`: one
  run per member (see per_member), selected by the split runs' names. `smoke`: the study's
  own overrides of make_smoke's stand-in.
  """
  study = studies.get(report)
  if study is None:
    raise ValueError(f"report {report!r} is not a study; known: "
                     f"{', '.join(sorted(studies.STUDIES))} (rethinking_jax/studies)")
  flags, selected, num_seeds, subset = parse_arg(arg)
  if num_seeds > studies.SEEDS_PER_STUDY:
    raise ValueError(f"config argument seeds={num_seeds}: at most {studies.SEEDS_PER_STUDY} "
                     "(a study's own seed range)")
  c = default.get_config()
  c.report = report
  c.seeds = ",".join(str(study.seed_offset + i) for i in range(num_seeds))
  c.dataset = "cifar10"
  c.num_epochs = 200
  c.checkpoint_every_epochs = 10
  for key, value in study.config.items():
    c[key] = value
  runs = study.runs()
  if "per_member" in flags:
    runs = per_member(runs, c)
  models = {o["model"] for o in runs.values()}

  def chosen(name, model):
    return any(name == s or (model == s if s in models else
                             s not in runs and (model.startswith(s) or name.startswith(s)))
               for s in selected)

  kept = {name: o for name, o in runs.items() if not selected or chosen(name, o["model"])}
  if not kept:
    raise ValueError(f"config argument {arg!r} selects no run; allowed: smoke, per_member, "
                     "seeds=N, subset=N, "
                     f"{', '.join(sorted(models | set(runs)))} (or a model prefix such as "
                     "inception)")
  c.runs = ml_collections.ConfigDict({name: dict(o) for name, o in kept.items()})
  if subset:
    on_subset(c, subset)
  if "smoke" in flags:
    make_smoke(c, **study.smoke)
  return c


def make_smoke(c, **overrides):
  """Tiny CIFAR-shaped synthetic data, two epochs, offline; never the paper's run (a suite:
  about a minute cold on 2 cores, a third of it warm: benchmarks/smoke_times.sh).

  Members run one after another (`sequential`): their single-member programs do not depend on
  the number of members, so runs of one architecture compile it once (and the tests' shared
  compilation cache serves every suite that uses it).
  """
  c.smoke = True
  c.member_strategy = "sequential"
  c.dataset = "synthetic"
  c.synthetic_shape = (12, 12, 3)
  c.crop_size = 10
  c.synthetic_train = 64
  c.synthetic_test = 32
  c.batch_size = 16
  c.eval_batch_size = 64
  c.num_epochs = 2
  c.eval_every_epochs = 1
  c.checkpoint_every_epochs = 0
  c.stop_when_memorized = False
  for key, value in overrides.items():
    c[key] = value
  for run in c.runs.values():
    for key in ("num_epochs", "eval_every_epochs"):
      if key in run:
        del run[key]
