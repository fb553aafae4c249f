"""Shared pieces of the paper's suite configs: sub-runs, selection by argument, :smoke."""

import ml_collections

from configs import default
from rethinking_jax.reports import paper

PAPER_WEIGHT_DECAY = paper.WEIGHT_DECAY  # the one table of the paper's values


# Each experiment draws its seeds from its own range, so that no two experiments share a
# member (Figure 1's p = 0 members are not Table 1's true-label members).
SEED_OFFSET = {"table1": 0, "figure1": 100, "figure2": 200, "table4": 300, "table2": 400,
               "rademacher": 500}


def parse_arg(arg):
  """'smoke,inception,seeds=3' -> (True, ['inception'], 3); '' -> (False, [], 1)."""
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  seeds = [p for p in parts if p.startswith("seeds=")]
  try:
    num_seeds = int(seeds[-1].split("=", 1)[1]) if seeds else 1
  except ValueError:
    num_seeds = 0
  if num_seeds < 1:
    raise ValueError(f"config argument {seeds[-1]!r}: seeds=N takes a positive integer "
                     "(the members per row, with independent seeds)")
  return "smoke" in parts, [p for p in parts if p != "smoke" and p not in seeds], num_seeds


def suite(report: str, runs: dict, arg=None, num_epochs: int = 200, smoke=None, **base):
  """A config whose `runs` are `runs` ({name: overrides}), optionally a subset and :smoke.

  Selection: an argument that names a run keeps it; one that names a model keeps that
  model's runs; any other keeps the runs whose model starts with it (`table1.py:inception`
  keeps inception_small and inception_small_nobn, `table1.py:inception_small` only the
  first). `seeds=N`: every row trained by N members with independent seeds (the reports
  give mean ± standard deviation). `smoke`: the suite's own overrides of make_smoke's
  stand-in.
  """
  smoke_run, selected, num_seeds = parse_arg(arg)
  c = default.get_config()
  c.report = report
  offset = SEED_OFFSET.get(report, 0)
  c.seeds = ",".join(str(offset + i) for i in range(num_seeds))
  c.dataset = "cifar10"
  c.num_epochs = num_epochs
  c.checkpoint_every_epochs = 10
  for key, value in base.items():
    c[key] = value
  models = {o["model"] for o in runs.values()}

  def chosen(name, model):
    return any(name == s or (model == s if s in models else
                             s not in runs and model.startswith(s)) for s in selected)

  kept = {name: o for name, o in runs.items() if not selected or chosen(name, o["model"])}
  if not kept:
    raise ValueError(f"config argument {arg!r} selects no run; allowed: smoke, seeds=N, "
                     f"{', '.join(sorted(models | set(runs)))} (or a model prefix such as "
                     "inception)")
  c.runs = ml_collections.ConfigDict({name: dict(o) for name, o in kept.items()})
  if smoke_run:
    make_smoke(c, **(smoke or {}))
  return c


def make_smoke(c, **overrides):
  """Tiny CIFAR-shaped synthetic data, two epochs: seconds, offline; never the paper's run.

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
