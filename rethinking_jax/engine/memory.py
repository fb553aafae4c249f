"""Will E members fit? An estimate made before anything is compiled or placed.

Too many members for the memory used to end in XLA's `std::bad_alloc` (exit 134, no
message). The estimate counts what a run keeps and what a step needs, from shapes alone
(jax.eval_shape): each member's state (parameters, momentum, batch statistics) and labels,
the dataset on the device, and for the members a step computes at once (all of them under
the vmapped strategies, one otherwise) their gradients and saved activations. It is a lower
bound of the peak (XLA's own buffers and compilation come on top, and the `patches`
strategy's patch matrices), so a run is refused only when the estimate alone does not fit.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import resource
from collections.abc import Callable

import jax
import numpy as np

from rethinking_jax.base.errors import UserError
from rethinking_jax.engine.strategies import Strategy

# Refuse when the estimate exceeds this share of what is available (the rest: XLA's own
# buffers, compilation, Python).
USABLE_SHARE = 0.9


def tree_bytes(tree) -> int:
  return int(sum(np.prod(x.shape) * np.dtype(x.dtype).itemsize
                 for x in jax.tree.leaves(tree)))


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Bytes: `per_member` grows with every member, `per_parallel` with each member a step
  computes at once, `fixed` not at all."""

  per_member: int
  per_parallel: int
  fixed: int

  def total(self, members: int, parallel: int) -> int:
    return members * self.per_member + parallel * self.per_parallel + self.fixed

  def most_members(self, budget: int, all_parallel: bool) -> int:
    """The most members whose total fits `budget` bytes."""
    each = self.per_member + (self.per_parallel if all_parallel else 0)
    room = budget - self.fixed - (0 if all_parallel else self.per_parallel)
    return max(0, room // max(each, 1))


def estimate(model, input_shape, batch_size: int, labels_per_member: int,
             data_bytes: int) -> Estimate:
  """A member's state is its parameters, their momentum and its batch statistics; a step
  adds its gradients and twice its saved activations (forward and backward)."""
  measure: Callable[..., tuple[int, int, int]]
  try:
    hash(model)
    measure = model_bytes
  except TypeError:  # a module with an unhashable field: measured without the cache
    measure = model_bytes.__wrapped__
  params, stats, activations = measure(model, tuple(input_shape))
  return Estimate(per_member=2 * params + stats + labels_per_member,
                  per_parallel=params + 2 * batch_size * activations, fixed=data_bytes)


@functools.lru_cache(maxsize=64)
def model_bytes(model, input_shape: tuple) -> tuple[int, int, int]:
  """(parameters, batch statistics, every layer's output for one training example: what a
  backward pass keeps) in bytes, from one abstract trace (cached: a run's checks and a
  suite's sub-runs of one model share it)."""
  x = jax.ShapeDtypeStruct((1, *input_shape), np.float32)

  def forward(x):
    variables = model.init(jax.random.key(0), x, train=False)
    _, state = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)},
                           capture_intermediates=True, mutable=["intermediates", "batch_stats"])
    return variables["params"], variables.get("batch_stats", {}), state["intermediates"]

  params, stats, activations = jax.eval_shape(forward, x)
  return tree_bytes(params), tree_bytes(stats), tree_bytes(activations)


def _read(path: str) -> str | None:
  try:
    with open(path) as f:
      return f.read().strip()
  except OSError:
    return None


def host_available() -> tuple[int | None, str]:
  """(bytes this process may still allocate, what bounds it), the tightest of: free memory
  (MemAvailable), the cgroup's memory.max, and the address-space limit (ulimit -v)."""
  found = []
  meminfo = _read("/proc/meminfo") or ""
  for line in meminfo.splitlines():
    if line.startswith("MemAvailable:"):
      found.append((int(line.split()[1]) * 1024, "free memory (MemAvailable)"))
  limit, used = _read("/sys/fs/cgroup/memory.max"), _read("/sys/fs/cgroup/memory.current")
  if limit and used and limit != "max":
    found.append((int(limit) - int(used), "the cgroup's memory.max"))
  soft, _ = resource.getrlimit(resource.RLIMIT_AS)
  if soft != resource.RLIM_INFINITY:
    status = _read(f"/proc/{os.getpid()}/status") or ""
    size = next((int(line.split()[1]) * 1024 for line in status.splitlines()
                 if line.startswith("VmSize:")), 0)
    found.append((soft - size, "the address-space limit (ulimit -v)"))
  return min(found) if found else (None, "unknown")


def device_available(device) -> tuple[int | None, str]:
  """(bytes free on an accelerator, its name); (None, ...) where it does not say."""
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if not stats or "bytes_limit" not in stats:
    return None, device.device_kind
  return stats["bytes_limit"] - stats.get("bytes_in_use", 0), f"{device.device_kind} memory"


def check(est: Estimate, members: int, strategy: Strategy, model: str, batch_size: int,
          available: tuple[int | None, str]) -> int:
  """The estimated bytes of `members` members; UserError in one line when that does not fit
  what is available."""
  budget, bound = available
  parallel = members if strategy.all_at_once else 1
  need = est.total(members, parallel)
  if budget is None or need <= USABLE_SHARE * budget:
    return need
  fit = est.most_members(int(USABLE_SHARE * budget), strategy.all_at_once)
  gb = lambda b: f"{b / 2**30:.1f} GB"
  hint = ("member_strategy=sequential or a smaller batch_size (a vmapped step holds every "
          "member's gradients and activations at once), or "
          if strategy.all_at_once else "")
  raise UserError(
      f"members: {members} members of {model} need at least {gb(need)} (state and labels "
      f"{gb(members * est.per_member)}, data {gb(est.fixed)}, a step's gradients and "
      f"activations {gb(parallel * est.per_parallel)} at batch_size {batch_size}) but "
      f"{gb(max(budget, 0))} is available ({bound}); at most {fit} members fit: use "
      f"{hint}fewer members per run (e.g. fewer seeds, or a suite of runs)")
