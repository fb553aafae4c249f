"""The device mesh: members spread over devices (`member` axis), batches split (`data` axis).

Members on different devices need no communication; a member's batch split over the `data`
axis gives data parallelism whose gradient all-reduce the compiler inserts under `jax.jit`
(no hand-written pmean). The same program runs on 1 device, 8 devices or many hosts.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from rethinking_jax.base.errors import UserError

AXES = ("member", "data")


def mesh_shape(text: str, num_members: int, batch_size: int, num_devices: int | None = None,
               spread_members: bool = True) -> tuple[int, int]:
  """(member, data) sizes from the config's `mesh_shape`: 'auto' or 'M,D'.

  auto: as many devices on the member axis as the members allow (the largest divisor of the
  device count that divides E), the rest data parallel. `spread_members=False` (every
  strategy but vmap: Strategy.spreads_members) keeps the member axis at 1.
  """
  num_devices = num_devices or jax.device_count()
  shape: tuple[int, ...]
  if str(text).strip() == "auto" and not spread_members:
    shape = (1, num_devices)
  elif str(text).strip() == "auto":
    members = max(d for d in range(1, num_devices + 1)
                  if num_devices % d == 0 and num_members % d == 0)
    shape = (members, num_devices // members)
  else:
    try:
      shape = tuple(int(v) for v in str(text).split(","))
    except ValueError:
      shape = ()
    if len(shape) != 2 or min(shape) < 1:
      raise UserError(f"mesh_shape: {text!r} is not 'auto' or 'MEMBER,DATA' with positive "
                      "integers, e.g. mesh_shape=4,2")
  members, data = shape
  if members > 1 and not spread_members:
    raise UserError(f"mesh_shape: {text!r} spreads members over {members} devices, which "
                    "only member_strategy=vmap can do (every other strategy keeps all members "
                    f"on each device); allowed with this strategy: 1,{num_devices}")
  if members * data != num_devices:
    raise UserError(f"mesh_shape: {members}x{data} = {members * data} devices, but "
                    f"{num_devices} are present; allowed: M,D with M*D = {num_devices}")
  if num_members % members:
    raise UserError(f"mesh_shape: {num_members} members cannot be split over {members} devices "
                    f"on the member axis; allowed member sizes: "
                    f"{', '.join(str(d) for d in _divisors(math.gcd(num_members, num_devices)))}")
  if batch_size % data:
    raise UserError(f"mesh_shape: batch_size {batch_size} cannot be split over {data} devices "
                    "on the data axis; choose a data size that divides the batch")
  return members, data


def _divisors(n: int) -> list[int]:
  return [d for d in range(1, n + 1) if n % d == 0]


def make_mesh(shape: tuple[int, int]) -> Mesh:
  return jax.make_mesh(shape, AXES, axis_types=(AxisType.Auto, AxisType.Auto))


def member_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (member) axis over the mesh's `member` axis, replicated over `data`."""
  return NamedSharding(mesh, PartitionSpec("member"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def place(tree, sharding: NamedSharding):
  """Host arrays -> global arrays with `sharding`; works across processes (each process
  holds the same host values and supplies the shards of its own devices)."""
  def one(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
  return jax.tree.map(one, tree)


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis over the mesh's `data` axis, replicated over `member`."""
  return NamedSharding(mesh, PartitionSpec("data"))


def local_rows(num_rows: int, sharding: NamedSharding) -> np.ndarray:
  """The rows of a [num_rows, ...] array with `sharding` that this process's devices hold."""
  rows: set[int] = set()
  for index in sharding.addressable_devices_indices_map((num_rows,)).values():
    rows.update(range(num_rows)[index[0]] if index is not None else range(num_rows))
  return np.asarray(sorted(rows), np.int64)


def place_rows(local_arrays, rows: np.ndarray, num_rows: int, sharding: NamedSharding):
  """Global [num_rows, ...] arrays from this process's `rows` of them (`local_rows`).

  Each process reads from disk only the examples its own devices need: in a multi-host run
  the input pipeline is split across hosts by the sharding itself.
  """
  position = np.full(num_rows, -1, np.int64)
  position[rows] = np.arange(len(rows))

  def one(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(
        (num_rows, *x.shape[1:]), sharding,
        lambda index: x[position[np.arange(num_rows)[index[0]]]])
  return jax.tree.map(one, local_arrays)


def sync(name: str) -> None:
  """A barrier across the processes of a multi-host run (nothing on one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
  """True on every process when `flag` is true on any: a decision (stop on a signal) that all
  hosts must take together, or the others would wait in a collective forever."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils

  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))
