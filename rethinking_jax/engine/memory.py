"""Will E members fit? An estimate made before anything is compiled or placed.

Too many members for the memory used to end in XLA's `std::bad_alloc` (exit 134, no
message). The estimate counts what a run keeps and what a step needs, from shapes alone
(jax.eval_shape): each member's state (parameters, momentum, batch statistics) and labels,
the dataset on the device, and for the members a step computes at once (all of them under
`vmap`, one otherwise) their gradients and saved activations. It is a lower bound of the
peak (XLA's own buffers and compilation come on top), so a run is refused only when the
estimate alone does not fit.
"""

from __future__ import annotations

import dataclasses
import os
import resource

import jax
import numpy as np

from rethinking_jax.errors import UserError

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


def estimate(state_of_one, params_of_one, activations_per_example: int, batch_size: int,
             labels_per_member: int, data_bytes: int) -> Estimate:
  """From one member's abstract state and parameters, the bytes its forward pass saves per
  example, the labels it keeps and the dataset's bytes on the device."""
  per_parallel = tree_bytes(params_of_one) + 2 * batch_size * activations_per_example
  return Estimate(per_member=tree_bytes(state_of_one) + labels_per_member,
                  per_parallel=per_parallel, fixed=data_bytes)


def activation_bytes(model, input_shape, train: bool = True) -> int:
  """Bytes of every layer's output for one example (what a backward pass keeps)."""
  x = jax.ShapeDtypeStruct((1, *input_shape), np.float32)

  def forward(x):
    variables = model.init(jax.random.key(0), x, train=False)
    _, state = model.apply(variables, x, train=train, rngs={"dropout": jax.random.key(1)},
                           capture_intermediates=True, mutable=["intermediates", "batch_stats"])
    return state["intermediates"]

  return tree_bytes(jax.eval_shape(forward, x))


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


def check(est: Estimate, members: int, strategy: str, model: str, batch_size: int,
          available: tuple[int | None, str]) -> None:
  """UserError in one line when the estimate does not fit what is available."""
  budget, bound = available
  parallel = members if strategy == "vmap" else 1
  need = est.total(members, parallel)
  if budget is None or need <= USABLE_SHARE * budget:
    return
  fit = est.most_members(int(USABLE_SHARE * budget), strategy == "vmap")
  gb = lambda b: f"{b / 2**30:.1f} GB"
  hint = ("member_strategy=sequential or a smaller batch_size (a vmapped step holds every "
          "member's gradients and activations at once), or "
          if strategy == "vmap" else "")
  raise UserError(
      f"members: {members} members of {model} need at least {gb(need)} (state and labels "
      f"{gb(members * est.per_member)}, data {gb(est.fixed)}, a step's gradients and "
      f"activations {gb(parallel * est.per_parallel)} at batch_size {batch_size}) but "
      f"{gb(max(budget, 0))} is available ({bound}); at most {fit} members fit: use "
      f"{hint}fewer members per run (e.g. fewer seeds, or a suite of runs)")
