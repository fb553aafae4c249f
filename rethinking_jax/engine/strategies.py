"""Member strategies: how the single-member program is lifted to E members.

- `vmap` (default): one program, members batched (vmapped convolutions become grouped ones).
- `map`: one program, members looped inside it with `lax.map` (lower peak memory).
- `unrolled`: one program holding E copies of the single-member program, one after another
  (dense convolutions per member, as in `sequential`, without a host dispatch per member;
  compilation grows with E).
- `sequential`: one single-member program called E times from the host.
- `hybrid`: vmapped like `vmap`, but each convolution (forward and both gradients) runs as
  one dense convolution per member; batch-norm, activations, pooling, loss and optimizer stay
  batched over the member axis (models/member_conv.py).
- `patches`: vmapped, each convolution as its input patches times the kernel, so the
  members' convolutions are one matmul batched over the member axis.
- `streams`: `unrolled`, each member's step annotated for a GPU stream of its own
  (`compute_on("gpu_stream:k")`, k = 1..STREAMS); GPUs only (STREAM_PLATFORMS).
- `auto`: the fastest of these as measured for the platform and the model family
  (resolve_strategy; the measurements are cited there).

All of them run the same per-member function on the same per-member data, so they give the
same numbers (up to float reassociation). Compilation happens ahead of time here, so its cost
is measured apart from training.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from rethinking_jax.base import sections
from rethinking_jax.base.errors import UserError, one_of, require
from rethinking_jax.engine import program, sharding, xla_cpu
from rethinking_jax.engine.program import DeviceInputs, MemberLabels, ProgramSpec, TrainState
from rethinking_jax.models import ModelRecord


class Strategy(enum.StrEnum):
  """How E members become programs (recorded by name in summary.json).

  - vmap: one program, the members batched (convolutions become grouped ones); the only
    strategy whose member axis can be spread over devices;
  - map: one program, `lax.map` over the members (one after another inside it);
  - unrolled: one program holding each member's own step, written out E times;
  - sequential: each member's own single-member program, run one after another (one
    program compiled, whatever E);
  - hybrid, patches: vmap with the convolutions per member, or as batched matmuls;
  - streams: unrolled, each member's step on a GPU stream of its own.
  """

  VMAP = "vmap"
  MAP = "map"
  UNROLLED = "unrolled"
  SEQUENTIAL = "sequential"
  HYBRID = "hybrid"
  PATCHES = "patches"
  STREAMS = "streams"

  @property
  def spreads_members(self) -> bool:
    """Whether its member axis can be sharded over devices."""
    return self is Strategy.VMAP

  @property
  def all_at_once(self) -> bool:
    """Whether one step computes every member's activations and gradients at once (the
    vmapped strategies): what memory.check counts."""
    return self in (Strategy.VMAP, Strategy.HYBRID, Strategy.PATCHES)

  @property
  def conv_form(self) -> str:
    """How the model's convolutions run (models/member_conv.CONV_FORMS)."""
    return {Strategy.HYBRID: "per_member", Strategy.PATCHES: "patches"}.get(self, "xla")

  @property
  def per_member(self) -> bool:
    """Whether it runs one single-member program per member (else one program for all)."""
    return self is Strategy.SEQUENTIAL


STRATEGIES = ("auto", *Strategy)
# The strategies that run a model's convolutions as they are (any conv model may use them).
PLAIN_CONV_STRATEGIES = tuple(s for s in STRATEGIES if s == "auto"
                              or Strategy(s).conv_form == "xla")
# How steps are grouped into programs: `scan` puts every epoch between two evaluation points
# into one program; `host` compiles one step and dispatches it from Python, asynchronously
# (no host sync either way). `host` exists because XLA:CPU runs convolution gradients inside
# a loop body ~18x slower than outside one (jax-ml/jax#12868; benchmarks/RESULTS.md).
STEP_LOOPS = ("auto", "scan", "host")


# How members and steps become programs on which devices: all may change on resume (the same
# numbers up to float reassociation; for example to continue on a machine with more devices,
# or on another platform or core count, where `conv_impl=auto` picks differently).
SECTION = sections.Section("engine", {
    # auto | vmap | map | unrolled | sequential | hybrid | patches | streams (auto: choose)
    "member_strategy": "auto",
    "mesh_shape": "auto",          # 'MEMBER,DATA' device mesh, or auto (members first)
    "distributed": False,          # multi-host: call jax.distributed.initialize() first
    "step_loop": "auto",           # scan (epochs in one program) | host (a program per step)
    # XLA:CPU's convolution library: auto | ynn | eigen (auto: eigen, measured in
    # engine/xla_cpu.py). Process-wide
    "conv_impl": "auto",
}, resume_may_change=frozenset({"member_strategy", "mesh_shape", "distributed", "step_loop",
                                "conv_impl"}))


def check_config(c, streamed: bool = False) -> None:
  """How members and steps become programs: member_strategy, step_loop, conv_impl;
  `streamed`: whether the run reads its data batch by batch (data.inputs.streams)."""
  one_of("member_strategy", c.member_strategy, STRATEGIES)
  one_of("step_loop", c.step_loop, STEP_LOOPS)
  require(c.step_loop != "scan" or not streamed,
          "step_loop: scan puts a chunk of steps in one program over data on the device; "
          "the streamed input path feeds each step from the host; allowed with "
          "input_pipeline=stream: auto, host")
  one_of("conv_impl", c.conv_impl, xla_cpu.CONV_IMPLS)


def resolve_step_loop(step_loop: str, convolutional: bool, platform: str) -> str:
  """`auto`: `host` for convolutional models on CPU, `scan` everywhere else."""
  if step_loop != "auto":
    return step_loop
  return "host" if platform == "cpu" and convolutional else "scan"


# Models whose members train fastest `unrolled` on a CPU (measured; resolve_strategy).
CPU_UNROLLED_MODELS = frozenset({"alexnet_small"})


def resolve_strategy(strategy: str, convolutional: bool, platform: str,
                     spread_members: bool, model: str = "") -> Strategy:
  """`auto`: the fastest strategy measured for this platform and model family.

  - members spread over devices (`spread_members`): `vmap`, the one that shards the member
    axis;
  - CPU, small AlexNet: `unrolled` (benchmarks/RESULTS.md, 2-core AMD EPYC, 2026-12-03,
    layer_impl=custom, E = 4: 492 vs 371 ex/s sequential with YNN convolutions, 554 vs 539
    with Eigen's; 1.2-1.4x in the 2026-12-02 runs with XLA's pooling);
  - CPU, other models: `sequential` (MLP 1x512 at E = 4 on all 50,000 images, 28.0k ex/s
    sequential vs 24.1k vmap; a vmapped convolution is a grouped one, 534 vs 138 for AlexNet;
    the small Inception's unrolled program compiles for minutes and its speed is unmeasured,
    `hybrid` 136 vs 157 ex/s sequential at E = 4, 2026-12-04); `hybrid` and `patches` lose to
    `unrolled` for AlexNet there too (953 and 157 vs 1,076 ex/s at E = 4);
  - GPU, MLPs: `vmap` (issue #15, one H200: MLP 1x512 at E = 8, 3.43x one member's
    throughput);
  - GPU, convolutional nets: `sequential` (same H200: small Inception at E = 4, 1.17x one
    member's throughput sequential, 0.85x vmapped: cuDNN's grouped convolutions and their
    batch-grouped weight gradients are slow; `hybrid`, `patches` and `streams` are not yet
    timed on a GPU: benchmarks/gpu_suite.sh's `formulations` part);
  - anywhere else (not measured here): `sequential`, which runs each member's own dense
    program and so is never slower than training the members one after another.
  """
  if strategy != "auto":
    return Strategy(strategy)
  if spread_members:
    return Strategy.VMAP
  if platform == "gpu" and not convolutional:
    return Strategy.VMAP
  if platform == "cpu" and model in CPU_UNROLLED_MODELS:
    return Strategy.UNROLLED
  return Strategy.SEQUENTIAL


# Where `streams` may run: elsewhere XLA keeps each annotated call out of line, and XLA:CPU
# runs such calls far slower (small AlexNet, E = 2: ~35x below `unrolled`, measured in
# benchmarks/RESULTS.md "Member formulations for GPUs, timed on the CPU").
STREAM_PLATFORMS = ("gpu",)


def choose(config_strategy: str, mesh_shape, model: ModelRecord,
           platform: str) -> tuple[Strategy, tuple[int, int]]:
  """The strategy (`auto` resolved) for `model` and the (member, data) mesh it runs on:
  members spread over devices where the mesh can spread them and the strategy can;
  `mesh_shape(spread_members=...)` gives the mesh for either answer. UserError where the
  strategy cannot run here (streams off GPUs) or cannot change this model's convolutions."""
  strategy = resolve_strategy(config_strategy, model.convolutional, platform,
                              spread_members=mesh_shape(spread_members=True)[0] > 1,
                              model=model.name)
  require(strategy is not Strategy.STREAMS or platform in STREAM_PLATFORMS,
          f"member_strategy: streams puts members on GPU streams; on {platform} its "
          f"out-of-line calls run ~35x slower; allowed here: "
          f"{', '.join(s for s in STRATEGIES if s != Strategy.STREAMS)}")
  require(strategy.conv_form == "xla" or not model.convolutional or model.member_conv,
          f"member_strategy: {strategy} changes how {model.name}'s convolutions run, which "
          f"it does not support (ModelRecord.member_conv); allowed for it: "
          f"{', '.join(PLAIN_CONV_STRATEGIES)}")
  return strategy, mesh_shape(spread_members=strategy.spreads_members)


# Splitting stacked members and stacking them again on the host (the sequential strategy):
# one program per block of at most MEMBERS_PER_PROGRAM members, the same program for every
# full block (the block's start is an argument), so neither the size nor the number of
# programs grows with the number of members E. One program with E outputs per leaf did not
# fit a 4 GB address space at E = 1,002, nor did one compiled program per block. Not one
# program per member: 2 processes on loopback (gloo) deadlocked in dispatch in 7 of 8 tries
# with a program per member, and never (6 of 6) with one per block.
MEMBERS_PER_PROGRAM = 64


def _blocks(num_members: int) -> list[tuple[int, int]]:
  return [(start, min(start + MEMBERS_PER_PROGRAM, num_members))
          for start in range(0, num_members, MEMBERS_PER_PROGRAM)]


@functools.partial(jax.jit, static_argnums=2)
def _members_in(tree, start, size: int) -> list:
  block = jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, start, size), tree)
  return [jax.tree.map(lambda x, m=m: x[m], block) for m in range(size)]


def _split(tree, num_members: int) -> list:
  """The per-member trees of a stacked tree."""
  return [member for start, stop in _blocks(num_members)
          for member in _members_in(tree, start, stop - start)]


@functools.partial(jax.jit, static_argnums=1)
def _zeros_for(tree, num_members: int):
  return jax.tree.map(lambda x: jnp.zeros((num_members, *x.shape), x.dtype), tree)


@functools.partial(jax.jit, donate_argnums=0)
def _put_block(stacked, trees: list, start):
  return jax.tree.map(
      lambda whole, *xs: jax.lax.dynamic_update_slice_in_dim(whole, jnp.stack(xs), start, 0),
      stacked, *trees)


def _stack(trees: list):
  """The inverse of _split, block by block into one buffer (donated, so updated in place).
  Consumes `trees`: each block's entries are dropped once written, so a run holds its
  members' state about twice at most, never three times."""
  stacked = _zeros_for(trees[0], len(trees))
  for start, stop in _blocks(len(trees)):
    stacked = _put_block(stacked, trees[start:stop], start)
    trees[start:stop] = [None] * (stop - start)
  return stacked


def _parts(tree, num_members: int) -> list:
  """_split inside a program (the unrolled strategy): static slices."""
  return [jax.tree.map(lambda x, m=m: x[m], tree) for m in range(num_members)]


def _whole(trees: list):
  """_stack inside a program."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


_metrics_of_train_sums = jax.jit(jax.vmap(program.metrics_of_train_sums))


def _num_members(members) -> int:
  return jax.tree.leaves(members)[0].shape[0]


def _vmapped(fn):
  """Under vmap the member axis is the mesh's `member` axis (`spmd_axis_name`), so sharding
  constraints inside a member's program (its batch over `data`) compose with it."""
  return lambda state, members, labels, data, *rest: jax.vmap(
      lambda s, m, lab: fn(s, m, lab, data, *rest),
      spmd_axis_name="member")(state, members, labels)


def _unrolled(fn, placed=lambda m, fn: fn):
  """fn written out once per member; `placed(m, fn)`: member m's copy (as it is, or on a
  stream of its own)."""
  def unrolled(state, members, labels, data, *rest):
    per_member = zip(*(_parts(tree, _num_members(members)) for tree in (state, members, labels)),
                     strict=True)
    return _whole([placed(m, fn)(*args, data, *rest) for m, args in enumerate(per_member)])
  return unrolled


def _mapped(fn):
  return lambda state, members, labels, data, *rest: jax.lax.map(
      lambda args: fn(*args, data, *rest), (state, members, labels))


# GPU streams the `streams` strategy spreads members over (member m on stream m % STREAMS + 1;
# stream 0 is the program's own).
STREAMS = 4


def _on_stream(m, fn):
  """fn in a call annotated for GPU stream m % STREAMS + 1: XLA:GPU runs such calls
  asynchronously on that stream (XLA:CPU ignores the annotation but keeps the call out of
  line, and slow: STREAM_PLATFORMS). compute_on2 is experimental: imported here, so a jax
  without it fails this strategy alone, in one line."""
  try:
    from jax.experimental.compute_on import compute_on2
  except ImportError as e:
    raise UserError(f"member_strategy: streams needs jax.experimental.compute_on.compute_on2, "
                    f"which jax {jax.__version__} lacks; allowed: "
                    f"{', '.join(s for s in STRATEGIES if s != Strategy.STREAMS)}") from e
  return compute_on2(fn, compute_type=f"gpu_stream:{m % STREAMS + 1}",
                     out_memory_spaces=jax.memory.Space.Device)


# fn(state, member, labels, data, *rest) over stacked members, within one program: how each
# one-program strategy lifts a member's function (sequential runs it as it is, per member).
# hybrid and patches are vmap over a model whose convolutions differ (Strategy.conv_form).
_LIFT: dict[Strategy, Callable[..., Any]] = {
    Strategy.VMAP: _vmapped, Strategy.UNROLLED: _unrolled, Strategy.MAP: _mapped,
    Strategy.HYBRID: _vmapped, Strategy.PATCHES: _vmapped,
    Strategy.STREAMS: functools.partial(_unrolled, placed=_on_stream)}


def _compiled_memory(compiled, estimate: int | None) -> str:
  """'; XLA's buffers: ...' from a compiled program's memory_analysis(), beside the
  pre-compile estimate (memory.check's bytes for the whole run), for the compile log line; '' where
  the backend does not say."""
  try:
    stats = compiled.memory_analysis()
  except Exception:  # noqa: BLE001 -- an analysis some backends lack: the line goes without
    return ""
  if stats is None:
    return ""
  mb = lambda b: f"{b / 2**20:,.1f} MB"
  line = (f"; XLA's buffers for it: arguments {mb(stats.argument_size_in_bytes)}, outputs "
          f"{mb(stats.output_size_in_bytes)} ({mb(stats.alias_size_in_bytes)} of them "
          f"donated), temporaries {mb(stats.temp_size_in_bytes)}")
  if estimate is not None:
    line += f"; the run's pre-compile memory estimate: {mb(estimate)}"
  return line


class CompiledMembers:
  """What every input path's programs share for E members of one architecture: the init and
  labels programs, and how a member's function is compiled (once, timed) and run for all
  members under the strategy. MemberPrograms (data on the device) and
  streaming.StreamPrograms (batches fed from the host) add their train and eval programs."""

  def __init__(self, spec: ProgramSpec, strategy: str, step_loop: str):
    self.spec, self.strategy, self.step_loop = spec, Strategy(strategy), step_loop
    self.compile_seconds = 0.0
    self.memory_estimate: int | None = None  # memory.check's bytes for the run, if set
    mesh = spec.device_mesh
    by_member = sharding.member_sharded(mesh)
    # State and labels are created already sharded over the member axis.
    init = functools.partial(program.init_state, spec)
    self._init: Any  # a jitted function of all members' arrays (or a Python loop over one)
    # sequential: one program for one member, whatever their number
    self._init_each: Callable[[Any], Any] | None = None
    if mesh.shape["member"] > 1:
      self._init = jax.jit(jax.vmap(init, spmd_axis_name="member"), out_shardings=by_member)
    elif self.strategy.per_member:
      init_each = self._init_each = jax.jit(init)
      self._init = lambda members: _stack([init_each(m) for m in _split(
          members, _num_members(members))])
    else:  # one member at a time: a vmapped init runs the forward pass with grouped
      # convolutions, which XLA:CPU compiles and runs slowly
      self._init = jax.jit(lambda members: jax.lax.map(init, members),
                           out_shardings=by_member)
    self._labels = jax.jit(jax.vmap(functools.partial(program.member_labels, spec),
                                    in_axes=(0, None, None), spmd_axis_name="member"),
                           out_shardings=by_member)
    # Donated: the parameters pass through without a copy; the sums come back replicated,
    # readable in every process.
    self._take_loss_sum = jax.jit(program.take_loss_sum, donate_argnums=0,
                                  out_shardings=(by_member, sharding.replicated(mesh)))
    self._compiled: dict[str, Any] = {}

  def train_chunk(self, state: TrainState, members, inputs, first_step: int,
                  num_steps: int) -> TrainState:
    """Trains every member for steps [first_step, first_step + num_steps) (each input
    path's programs: MemberPrograms, streaming.StreamPrograms)."""
    raise NotImplementedError

  def evaluate(self, state: TrainState, members, inputs) -> program.Metrics:
    """Every member's program.Metrics ([E] arrays) over the full splits."""
    raise NotImplementedError

  def take_minibatch_loss(self, state: TrainState, num_steps: int):
    """(state, [E] mean train-mode minibatch loss of each member over its last `num_steps`
    steps): the state's loss sums, taken and zeroed."""
    state, sums = self._compiled_fn("take_loss_sum", self._take_loss_sum, state)(state)
    return state, np.asarray(jax.device_get(sums), np.float64) / num_steps

  def _jit(self, fn, out_shardings, donate: bool = False):
    """fn(state, member, labels, data, *rest) compiled for all members with this strategy."""
    donate_argnums = (0,) if donate else ()
    if self.strategy.per_member:
      return jax.jit(fn, donate_argnums=donate_argnums)
    return jax.jit(_LIFT[self.strategy](fn), donate_argnums=donate_argnums,
                   out_shardings=out_shardings)

  def place_members(self, members):
    """Host member arrays -> device arrays sharded over the member axis."""
    return sharding.place(members, sharding.member_sharded(self.spec.device_mesh))

  def init(self, members) -> TrainState:
    """Every member's initial state (the program compiled on first use, timed)."""
    if self._init_each is None:
      return self._compiled_fn("init", self._init, members)(members)
    each = _split(members, _num_members(members))
    compiled = self._compiled_fn("init", self._init_each, each[0])
    return _stack([compiled(m) for m in each])

  def abstract_state(self, members) -> TrainState:
    """The shapes, dtypes and shardings of init(members), without running or compiling it."""
    return jax.eval_shape(self._init, members)

  def labels(self, members, train_labels, test_labels) -> MemberLabels:
    return self._labels(members, train_labels, test_labels)

  def _compiled_fn(self, name, jitted, *args):
    """`jitted` compiled ahead of time for `args` on first use (its cost counted apart)."""
    if name not in self._compiled:
      logging.info("compiling the %s program (%s strategy)", name, self.strategy)
      start = time.perf_counter()
      self._compiled[name] = jitted.lower(*args).compile()
      seconds = time.perf_counter() - start
      self.compile_seconds += seconds
      logging.info("compiled the %s program in %.1f s%s", name, seconds,
                   _compiled_memory(self._compiled[name], self.memory_estimate))
    return self._compiled[name]

  def _call(self, name, jitted, state, members, labels, data, *rest):
    """Runs `jitted` once for all members."""
    return self._steps(name, jitted, state, members, labels, [(data, *rest)])

  def _steps(self, name, jitted, state, members, labels, steps):
    """Runs `jitted` for all members once per (data, *rest) of `steps`, state threaded.

    The sequential strategy splits the state into members once and stacks it once, not at
    every step (for Inception V3 a stack copies ~200 MB per member).
    """
    if not self.strategy.per_member:
      for data, *rest in steps:
        args = (state, members, labels, data, *rest)
        state = self._compiled_fn(name, jitted, *args)(*args)
      return state
    num_members = _num_members(members)
    states = _split(state, num_members)
    fixed = list(zip(_split(members, num_members), _split(labels, num_members), strict=True))
    for data, *rest in steps:
      for m in range(num_members):
        args = (states[m], *fixed[m], data, *rest)
        states[m] = self._compiled_fn(name, jitted, *args)(*args)
    return _stack(states)

  def _summed(self, name, jitted, state, members, labels, datas):
    """The sum over `datas` of jitted(state, members, labels, data): per-member [E, ...]
    totals of batch statistics, accumulated on the device."""
    if self.strategy.per_member:
      num_members = _num_members(members)
      fixed = list(zip(*(_split(tree, num_members) for tree in (state, members, labels)),
                       strict=True))
      call = lambda data: _stack([self._compiled_fn(name, jitted, *f, data)(*f, data)
                                  for f in fixed])
    else:
      call = lambda data: self._compiled_fn(name, jitted, state, members, labels, data)(
          state, members, labels, data)
    total = None
    for data in datas:
      out = call(data)
      total = out if total is None else total + out
    return total

class MemberPrograms(CompiledMembers):
  """Compiled init / train-chunk / evaluate programs for E members whose data is on the
  device (DeviceInputs)."""

  def __init__(self, spec: ProgramSpec, strategy: str, step_loop: str = "scan"):
    super().__init__(spec, strategy, step_loop)
    mesh = spec.device_mesh
    by_member, replicated = sharding.member_sharded(mesh), sharding.replicated(mesh)
    chunk = functools.partial(program.train_chunk if step_loop == "scan"
                              else program.train_step_in_epoch, spec)
    self._chunk_fn = self._jit(chunk, by_member, donate=True)
    self._eval_fn = self._jit(functools.partial(program.evaluate, spec), replicated)
    self._eval_train_fn = self._jit(functools.partial(program.evaluate_train_until, spec),
                                    replicated)

  def train_chunk(self, state: TrainState, members, inputs: DeviceInputs, first_step: int,
                  num_steps: int) -> TrainState:
    """Trains every member for steps [first_step, first_step + num_steps)."""
    labels, data = inputs
    if self.step_loop == "scan":  # one program for the chunk
      return self._steps("chunk", self._chunk_fn, state, members, labels,
                         [(data, jax.numpy.int32(first_step), jax.numpy.int32(num_steps))])
    spe = self.spec.steps_per_epoch
    steps = ((data, jax.numpy.int32(step // spe), jax.numpy.int32(step % spe))
             for step in range(first_step, first_step + num_steps))
    return self._steps("chunk", self._chunk_fn, state, members, labels, steps)

  def evaluate(self, state: TrainState, members, inputs: DeviceInputs) -> program.Metrics:
    """Every member's program.Metrics ([E] arrays) over the full splits."""
    return self._call("eval", self._eval_fn, state, members, *inputs)

  def evaluate_train_until(self, state: TrainState, members, inputs: DeviceInputs,
                           max_errors) -> program.Metrics:
    """Metrics like `evaluate`, the test metrics NaN, the train metrics over the examples
    program.evaluate_train_until visited before each member's `max_errors` ([E] ints) were
    exceeded (their number: `train_examples`)."""
    labels, data = inputs
    limited = (labels, jax.numpy.asarray(max_errors, jax.numpy.float32))
    sums = self._call("eval_train", self._eval_train_fn, state, members, limited, data)
    return _metrics_of_train_sums(sums, state.nonfinite)
