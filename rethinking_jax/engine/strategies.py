"""Member strategies: how the single-member program is lifted to E members.

- `vmap` (default): one program, members batched (vmapped convolutions become grouped ones).
- `map`: one program, members looped inside it with `lax.map` (lower peak memory).
- `sequential`: one single-member program called E times from the host.

All three run the same per-member function on the same per-member data, so they give the
same numbers (up to float reassociation). Compilation happens ahead of time here, so its cost
is measured apart from training.
"""

from __future__ import annotations

import functools
import time

import jax

from rethinking_jax.engine import program, sharding
from rethinking_jax.engine.program import DeviceData, MemberLabels, ProgramSpec, TrainState

STRATEGIES = ("vmap", "map", "sequential")
# How steps are grouped into programs: `scan` puts every epoch between two evaluation points
# into one program; `host` compiles one step and dispatches it from Python, asynchronously
# (no host sync either way). `host` exists because XLA:CPU runs convolution gradients inside
# a loop body ~18x slower than outside one (jax-ml/jax#12868; benchmarks/RESULTS.md).
STEP_LOOPS = ("auto", "scan", "host")


def resolve_step_loop(step_loop: str, model_name: str, platform: str) -> str:
  """`auto`: `host` for convolutional models on CPU, `scan` everywhere else."""
  if step_loop != "auto":
    return step_loop
  return "host" if platform == "cpu" and not model_name.startswith("mlp") else "scan"


def _index(tree, m):
  return jax.tree.map(lambda x: x[m], tree)


def _stack(trees):
  return jax.tree.map(lambda *xs: jax.numpy.stack(xs), *trees)


def _lift(fn, strategy):
  """fn(state, member, labels, data, *rest) over stacked members, within one program.

  Under vmap the member axis is the mesh's `member` axis (`spmd_axis_name`), so sharding
  constraints inside a member's program (its batch over `data`) compose with it.
  """
  if strategy == "vmap":
    return lambda state, members, labels, data, *rest: jax.vmap(
        lambda s, m, lab: fn(s, m, lab, data, *rest),
        spmd_axis_name="member")(state, members, labels)
  return lambda state, members, labels, data, *rest: jax.lax.map(
      lambda args: fn(*args, data, *rest), (state, members, labels))


class MemberPrograms:
  """Compiled init / train-chunk / evaluate programs for E members of one architecture."""

  def __init__(self, spec: ProgramSpec, strategy: str, step_loop: str = "scan"):
    self.spec, self.strategy, self.step_loop = spec, strategy, step_loop
    self.compile_seconds = 0.0
    by_member, replicated = sharding.member_sharded(spec.mesh), sharding.replicated(spec.mesh)
    # State and labels are created already sharded over the member axis.
    self._init = jax.jit(jax.vmap(functools.partial(program.init_state, spec),
                                  spmd_axis_name="member"), out_shardings=by_member)
    self._labels = jax.jit(jax.vmap(functools.partial(program.member_labels, spec),
                                    in_axes=(0, None, None), spmd_axis_name="member"),
                           out_shardings=by_member)
    chunk = functools.partial(program.train_chunk if step_loop == "scan"
                              else program.train_step_in_epoch, spec)
    evaluate = functools.partial(program.evaluate, spec)
    if strategy == "sequential":
      self._chunk_fn = jax.jit(chunk, donate_argnums=0)
      self._eval_fn = jax.jit(evaluate)
    else:
      self._chunk_fn = jax.jit(_lift(chunk, strategy), donate_argnums=0,
                               out_shardings=by_member)
      self._eval_fn = jax.jit(_lift(evaluate, strategy), out_shardings=replicated)
    self._compiled = {}

  def place_members(self, members):
    """Host member arrays -> device arrays sharded over the member axis."""
    return sharding.place(members, sharding.member_sharded(self.spec.mesh))

  def init(self, members) -> TrainState:
    return self._init(members)

  def labels(self, members, train_labels, test_labels) -> MemberLabels:
    return self._labels(members, train_labels, test_labels)

  def _call(self, name, jitted, state, members, labels, data, *rest):
    """Runs `jitted` for all members, compiling ahead of time on first use."""
    if self.strategy == "sequential":
      args = lambda m: (_index(state, m), _index(members, m), _index(labels, m), data, *rest)
    else:
      args = lambda m: (state, members, labels, data, *rest)
    if name not in self._compiled:
      start = time.perf_counter()
      self._compiled[name] = jitted.lower(*args(0)).compile()
      self.compile_seconds += time.perf_counter() - start
    compiled = self._compiled[name]
    if self.strategy != "sequential":
      return compiled(*args(0))
    num_members = jax.tree.leaves(members)[0].shape[0]
    return _stack([compiled(*args(m)) for m in range(num_members)])

  def train_chunk(self, state: TrainState, members, labels: MemberLabels, data: DeviceData,
                  first_epoch: int, num_epochs: int) -> TrainState:
    """Trains every member for epochs [first_epoch, first_epoch + num_epochs)."""
    if self.step_loop == "scan":
      return self._call("chunk", self._chunk_fn, state, members, labels, data,
                        jax.numpy.int32(first_epoch), jax.numpy.int32(num_epochs))
    for epoch in range(first_epoch, first_epoch + num_epochs):
      for position in range(self.spec.steps_per_epoch):
        state = self._call("chunk", self._chunk_fn, state, members, labels, data,
                           jax.numpy.int32(epoch), jax.numpy.int32(position))
    return state

  def evaluate(self, state: TrainState, members, labels: MemberLabels,
               data: DeviceData) -> jax.Array:
    """[E, 4]: train_loss, train_acc, test_loss, test_acc."""
    return self._call("eval", self._eval_fn, state, members, labels, data)
