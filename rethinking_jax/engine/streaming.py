"""The streaming input path: the same member programs, fed batch by batch from the host.

For datasets that do not fit in device memory (ImageNet). Each step is one compiled program
dispatched asynchronously; the stream's readers (threads, or grain's worker processes) read
the next batches meanwhile.
Every member of a run sees the same batches (one input stream), in the order of member 0's
seed -- `program.epoch_batches`, so a one-member run streams exactly the batches the
in-memory path would use and gives the same numbers. Each member still has its own labels,
input randomization, augmentation and dropout, all derived on the device from its seed and
the examples' indices. Under a multi-host mesh each process reads only the rows its own
devices hold.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import jax
import numpy as np

from rethinking_jax.data.stream import StreamedDataset, prefetch
from rethinking_jax.engine import program, sharding
from rethinking_jax.engine.members import MemberArrays
from rethinking_jax.engine.program import Feed, ProgramSpec, TrainState
from rethinking_jax.engine.strategies import CompiledMembers


def eval_batches(index: np.ndarray, batch_size: int):
  """`index` in batches of `batch_size`, the last padded by repeating its last example:
  (batch index, valid mask) pairs."""
  for start in range(0, len(index), batch_size):
    chunk = index[start:start + batch_size]
    valid = np.ones(batch_size, bool)
    valid[len(chunk):] = False
    yield np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - len(chunk))]), valid


class StreamInputs:
  """The streaming path's inputs: a StreamedDataset read batch by batch, the training
  examples an evaluation measures, the Gaussian test statistics, and the rows of each batch
  this process feeds (under a multi-host mesh each process reads only its devices' rows)."""

  pipeline = "stream"

  def __init__(self, spec: ProgramSpec, stream: StreamedDataset, train_eval_index: np.ndarray,
               mean, std, prefetch_batches: int = 4):
    self.stream, self.train_eval_index = stream, train_eval_index
    self.prefetch_batches = prefetch_batches
    self._batch_sharding = sharding.batch_sharded(spec.device_mesh)
    # Which rows of a batch this process feeds depends only on the batch size: work it out
    # once per size, not at every step.
    self._local_rows = functools.cache(
        lambda num_rows: sharding.local_rows(num_rows, self._batch_sharding))
    self._stats = sharding.place((np.asarray(mean, np.float32), np.asarray(std, np.float32)),
                                 sharding.replicated(spec.device_mesh))
    size = min(spec.eval_batch_size, max(len(train_eval_index), stream.num_test))
    data_size = spec.device_mesh.shape["data"]
    self.eval_batch_size = -(-size // data_size) * data_size  # splits over the data axis

  @property
  def train_eval_examples(self) -> int:
    return len(self.train_eval_index)

  def feeds(self, split: str, batches) -> Iterator[Feed]:
    """The Feeds of global batches [(index, valid)], in order: this process's rows of each,
    read ahead by the stream's readers and placed on the mesh ahead on a background thread
    (not between the steps the training loop dispatches)."""
    batches = list(batches)
    rows = [self._local_rows(len(index)) for index, _ in batches]
    local = [index[r] for (index, _), r in zip(batches, rows, strict=True)]
    reads = self.stream.read_batches(split, local, self.prefetch_batches)

    def place(item) -> Feed:
      (index, valid), r, (images, labels) = item
      placed = sharding.place_rows((images, labels, index[r].astype(np.int32), valid[r]),
                                   r, len(index), self._batch_sharding)
      return Feed(*placed, *self._stats)

    return prefetch(place, zip(batches, rows, reads, strict=True), self.prefetch_batches)

  def eval_feeds(self, split: str) -> Iterator[Feed]:
    """The feeds of one evaluation of `split`."""
    index = self.train_eval_index if split == "train" else np.arange(self.stream.num_test)
    return self.feeds(split, eval_batches(index, self.eval_batch_size))

  def close(self) -> None:
    self.stream.close()  # its reader threads


class StreamPrograms(CompiledMembers):
  """Compiled programs for E members whose train chunks and evaluations read StreamInputs
  (batches fed from the host, each step dispatched from Python)."""

  # The feed programs derive each member's labels from a batch's true labels: no labels are
  # passed (an empty tree in the labels slot of CompiledMembers' calls).
  _NO_LABELS = ()

  def __init__(self, spec: ProgramSpec, strategy: str, order_member: MemberArrays):
    super().__init__(spec, strategy, step_loop="host")
    self._order = jax.jit(functools.partial(program.epoch_batches, spec), static_argnums=1)
    self._order_member = order_member
    mesh = spec.device_mesh
    by_member, replicated = sharding.member_sharded(mesh), sharding.replicated(mesh)
    self._chunk_fn = self._jit(functools.partial(program.train_step_on_feed, spec),
                               by_member, donate=True)
    self._eval_fns = {split: self._jit(functools.partial(program.evaluate_feed, spec,
                                                         split=split), replicated)
                      for split in ("train", "test")}

  def epoch_order(self, num_train: int, epoch: int) -> np.ndarray:
    """[steps_per_epoch, batch_size] example indices of `epoch`, shared by every member."""
    return np.asarray(self._order(self._order_member, num_train, epoch))

  def train_chunk(self, state: TrainState, members, inputs: StreamInputs, first_step: int,
                  num_steps: int) -> TrainState:
    """Trains every member for steps [first_step, first_step + num_steps)."""
    full = np.ones(self.spec.batch_size, bool)
    spe = self.spec.steps_per_epoch
    positions = [divmod(step, spe) for step in range(first_step, first_step + num_steps)]
    # Each epoch's order is computed here, on the thread that launches the steps: in a
    # multi-process run every process must launch its multi-device programs in one order, and
    # a program launched from the prefetch thread would interleave with the steps by timing.
    orders = {epoch: self.epoch_order(inputs.stream.num_train, epoch)
              for epoch in sorted({epoch for epoch, _ in positions})}

    feeds = inputs.feeds("train", [(orders[epoch][step], full) for epoch, step in positions])
    return self._steps("chunk", self._chunk_fn, state, members, self._NO_LABELS,
                       ((feed,) for feed in feeds))

  def evaluate(self, state: TrainState, members, inputs: StreamInputs) -> program.Metrics:
    """[E]-array Metrics; train metrics over `train_eval_index`, test metrics over the whole
    test split."""
    sums = [np.asarray(jax.device_get(self._summed(
        f"eval_{split}", self._eval_fns[split], state, members, self._NO_LABELS,
        inputs.eval_feeds(split))), np.float64) for split in ("train", "test")]
    nonfinite = np.asarray(jax.device_get(state.nonfinite), np.float32)
    each = [program.metrics_from_sums(train, test, inputs.train_eval_examples,
                                      inputs.stream.num_test, bad)
            for train, test, bad in zip(*sums, nonfinite, strict=True)]
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *each)
