"""The compiled training program: one member's step, epoch and evaluation, lifted to E members.

Everything between two evaluation points is one XLA program: on-device shuffling,
randomization, augmentation and preprocessing inside a `lax.scan` over batches, the state
donated. The single-member functions here are pure; `strategies.py` maps them over members.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rethinking_jax import models
from rethinking_jax.base import sections
from rethinking_jax.base.errors import require
from rethinking_jax.data import inputs, pipeline, preprocess, randomize
from rethinking_jax.engine import members as members_lib
from rethinking_jax.engine.members import MemberArrays

# Random streams of a member besides the randomization streams (see randomize._STREAM).
_INIT, _ORDER, _AUGMENT, _DROPOUT = 11, 12, 13, 14

# The compiled program's own fields (ProgramSpec takes them by name). The evaluation batch may
# change on resume: the same sums.
SECTION = sections.Section("program", {
    "batch_size": 128,             # [default]
    "momentum": 0.9,
    "lr_decay_rate": 0.95,         # staircase decay factor ...
    "lr_decay_every_epochs": 1.0,  # ... applied every this many epochs [default]
    "eval_batch_size": 1000,
    "corrupt_test_labels": False,  # test labels stay true (the paper)
}, resume_may_change=frozenset({"eval_batch_size"}))


class DeviceData(NamedTuple):
  """The dataset, resident on the device once as uint8, plus the Gaussian test statistics."""

  train_images: jax.Array  # uint8 [N,H,W,C]
  test_images: jax.Array   # uint8 [M,H,W,C]
  mean: jax.Array          # float32 [C], cropped [0,1] train set
  std: jax.Array           # float32 [C]


class Feed(NamedTuple):
  """One host-fed batch (the streaming input path): shared by every member of a run.

  `labels` are the true labels; each member derives its own from them and `positions` (the
  examples' positions in their split), exactly as the in-memory path does.
  """

  images: jax.Array        # uint8 [B,H,W,C], split over the mesh's `data` axis
  labels: jax.Array        # int32 [B] true labels
  positions: jax.Array     # int32 [B] positions in the split
  valid: jax.Array         # bool [B]: False on the padding of a split's last batch
  mean: jax.Array          # float32 [C] (Gaussian test statistics)
  std: jax.Array


class MemberLabels(NamedTuple):
  """Each member's labels, drawn once (fixed across epochs): int32 [N] and [M], and which
  training labels its corruption changed (bool [N]: the memorization-dynamics split)."""

  train: jax.Array
  test: jax.Array
  train_corrupted: jax.Array


class DeviceInputs(NamedTuple):
  """The in-memory path's inputs: the dataset resident on the device and every member's
  labels (the streaming path's counterpart is streaming.StreamInputs)."""

  labels: MemberLabels
  data: DeviceData

  @property
  def pipeline(self) -> str:
    """Which input path these are (streaming.StreamInputs: "stream")."""
    return "device"

  @property
  def train_eval_examples(self) -> int:
    """How many training examples an evaluation measures: all of them."""
    return int(self.data.train_images.shape[0])

  def close(self) -> None:
    """Nothing to release (the arrays go with the last reference)."""


class TrainState(NamedTuple):
  """One member's training state (stacked on a leading axis for E members)."""

  step: jax.Array          # int32, steps taken
  params: Any
  batch_stats: Any         # {} for models without batch-norm
  opt_state: Any           # optax.sgd state: (TraceState(momentum), ScaleByScheduleState)
  nonfinite: jax.Array     # bool: a training loss was NaN/inf (the member diverged)
  # float32: the train-mode minibatch losses summed since the host loop last took them
  # (take_loss_sum), so an evaluation point reports the training loss as the paper plots it
  loss_sum: jax.Array


@dataclasses.dataclass(frozen=True)
class ProgramSpec:
  """Static settings of the compiled program (hashable; changing one recompiles)."""

  model: nn.Module
  num_classes: int
  input_shape: tuple[int, int, int]     # after the crop
  crop: int | None
  transform: str
  kinds_present: tuple[str, ...]
  batch_size: int
  steps_per_epoch: int
  momentum: float
  lr_decay_rate: float
  lr_decay_interval_steps: int
  eval_batch_size: int
  corrupt_test_labels: bool = False
  mesh: Mesh | None = None              # with a `data` axis > 1: batches are split over it

  @property
  def device_mesh(self) -> Mesh:
    """The mesh the compiled programs lay members and batches out on (assemble sets it;
    only the pure functions of this module run without one)."""
    if self.mesh is None:
      raise ValueError("ProgramSpec.mesh is None: compiled programs need a device mesh")
    return self.mesh

  @classmethod
  def from_config(cls, config, dataset, specs, mesh, conv_form: str = "xla") -> ProgramSpec:
    """A validated run config's program settings for `dataset` (a data.Dataset on the device
    path or a stream.StreamedDataset: its shape, classes and size) and members `specs`;
    `conv_form`: the member strategy's convolutions (strategies.Strategy.conv_form). Its
    fields named as the program section's are that section's; the rest are derived."""
    c, data = SECTION.of(config), inputs.SECTION.of(config)
    steps = steps_per_epoch(dataset.num_train, c.batch_size)
    own = {f.name: c[f.name] for f in dataclasses.fields(cls) if f.name in SECTION.fields}
    return cls(
        model=models.from_config(config, dataset.num_classes, conv_form),
        num_classes=dataset.num_classes,
        input_shape=preprocess.cropped_shape(dataset.image_shape, data.crop_size),
        crop=preprocess.crop_size_for(dataset.image_shape, data.crop_size),
        transform=data.train_transform, kinds_present=members_lib.input_kinds_present(specs),
        steps_per_epoch=steps,
        lr_decay_interval_steps=lr_interval_steps(c.lr_decay_every_epochs, steps),
        mesh=mesh, **own)


def cross_entropy(logits, labels):
  """Per-example softmax cross-entropy, in float32 whatever the compute dtype (the training
  loss, its evaluation, and the complexity measures)."""
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def l2_of_kernels(params) -> jax.Array:
  """0.5 * sum of squared kernels (TF's l2_loss); biases and BN offsets are not decayed."""
  leaves = jax.tree_util.tree_leaves_with_path(params)
  return 0.5 * sum((jnp.sum(jnp.square(x)) for path, x in leaves
                    if getattr(path[-1], "key", None) == "kernel"), jnp.zeros((), jnp.float32))


def check_config(c) -> None:
  """The program's fields: SGD with momentum, the staircase decay, the batches (each member's
  learning rate and weight decay: engine/members.py)."""
  require(0 <= c.momentum < 1, f"momentum: {c.momentum} must be in [0, 1)")
  require(0 < c.lr_decay_rate <= 1, f"lr_decay_rate: {c.lr_decay_rate} must be in (0, 1]")
  require(c.lr_decay_every_epochs > 0,
          f"lr_decay_every_epochs: {c.lr_decay_every_epochs} must be > 0")
  require(c.batch_size > 0, f"batch_size: {c.batch_size} must be a positive integer")
  require(c.eval_batch_size > 0, f"eval_batch_size: {c.eval_batch_size} must be positive")


def learning_rate(spec: ProgramSpec, initial, step):
  """Staircase decay, the one definition of the schedule (the step and the host's records
  both call it): initial * rate ** floor(step / interval), optax's staircase exponential
  decay."""
  schedule = optax.exponential_decay(1.0, spec.lr_decay_interval_steps, spec.lr_decay_rate,
                                     staircase=True)
  return initial * schedule(step)


def tx(spec: ProgramSpec, initial_lr) -> optax.GradientTransformation:
  """optax.sgd with heavy-ball momentum (TF MomentumOptimizer: accum = m * accum + g;
  var -= lr * accum) and the member's own schedule (`initial_lr` may be traced: one per
  member under the member axis)."""
  return optax.sgd(lambda count: learning_rate(spec, initial_lr, count),
                   momentum=spec.momentum, nesterov=False)


def batch_labels(spec: ProgramSpec, member: MemberArrays, true_labels, index, split: str):
  """The member's labels of the examples at `index` of `split` (a pure function of both).

  Training labels are corrupted with the member's label_p; test labels stay true unless
  `corrupt_test_labels`.
  """
  if split == "test" and not spec.corrupt_test_labels:
    return true_labels
  key = jax.random.fold_in(randomize.stream(member.key(), "labels"), 0 if split == "train" else 1)
  return randomize.corrupt_labels(key, true_labels, index, member.label_p, spec.num_classes)


def member_labels(spec: ProgramSpec, member: MemberArrays, train_labels, test_labels):
  """The member's training labels (corrupted with its label_p) and its test labels."""
  train = batch_labels(spec, member, train_labels, jnp.arange(train_labels.shape[0]), "train")
  return MemberLabels(
      train, batch_labels(spec, member, test_labels, jnp.arange(test_labels.shape[0]), "test"),
      train != train_labels)


def init_state(spec: ProgramSpec, member: MemberArrays) -> TrainState:
  key = jax.random.fold_in(member.key(), _INIT)
  variables = spec.model.init(key, jnp.zeros((1, *spec.input_shape)), train=False)
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=tx(spec, member.learning_rate).init(params),
                    nonfinite=jnp.zeros((), bool), loss_sum=jnp.zeros((), jnp.float32))


def _data_parallel(spec: ProgramSpec, x: jax.Array) -> jax.Array:
  """Splits a member's batch over the mesh's `data` axis; XLA then reduces the gradients."""
  if spec.mesh is None or spec.mesh.shape["data"] == 1:
    return x
  return jax.lax.with_sharding_constraint(x, NamedSharding(spec.mesh, PartitionSpec("data")))


def _inputs(spec, images_u8, index, member, split, train, mean, std, augment_key=None):
  return pipeline.model_inputs(
      _data_parallel(spec, images_u8), index, kind=member.kind, member_key=member.key(),
      split=split, mean=mean, std=std, crop=spec.crop, transform=spec.transform, train=train,
      augment_key=augment_key, kinds_present=spec.kinds_present)


def _variables(state: TrainState):
  return {"params": state.params,
          **({"batch_stats": state.batch_stats} if state.batch_stats else {})}


def _sgd_step(spec: ProgramSpec, state: TrainState, member: MemberArrays, images_u8, y,
              index, mean, std) -> TrainState:
  """One SGD step of one member on a batch of uint8 images with the member's labels `y`."""
  augment_key = jax.random.fold_in(jax.random.fold_in(member.key(), _AUGMENT), state.step)
  dropout_key = jax.random.fold_in(jax.random.fold_in(member.key(), _DROPOUT), state.step)
  x = _inputs(spec, images_u8, index, member, "train", True, mean, std, augment_key)
  has_bn = bool(state.batch_stats)

  def loss_fn(params):
    variables = {**_variables(state), "params": params}
    logits, bn_updates = spec.model.apply(variables, x, train=True,
                                          rngs={"dropout": dropout_key},
                                          mutable=["batch_stats"] if has_bn else [])
    data_loss = jnp.mean(cross_entropy(logits, y))
    return data_loss + member.weight_decay * l2_of_kernels(params), (data_loss, bn_updates)

  (_, (data_loss, bn_updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  param_updates, opt_state = tx(spec, member.learning_rate).update(grads, state.opt_state)
  params = optax.apply_updates(state.params, param_updates)
  return TrainState(step=state.step + 1, params=params,
                    batch_stats=(bn_updates.get("batch_stats", state.batch_stats) if has_bn
                                 else {}),
                    opt_state=opt_state,
                    nonfinite=state.nonfinite | ~jnp.isfinite(data_loss),
                    loss_sum=state.loss_sum + data_loss.astype(jnp.float32))


def take_loss_sum(state: TrainState) -> tuple[TrainState, jax.Array]:
  """(the state with its loss_sum zeroed, the loss_sum it held): the host loop takes it once
  per evaluation interval; the zero is what a checkpoint saves, so a resume is exact."""
  return state._replace(loss_sum=jnp.zeros_like(state.loss_sum)), state.loss_sum


def train_step(spec: ProgramSpec, state: TrainState, member: MemberArrays, labels: MemberLabels,
               data: DeviceData, index: jax.Array) -> TrainState:
  """One SGD step of one member on the examples at `index` of the device-resident data."""
  index = _data_parallel(spec, index)
  return _sgd_step(spec, state, member, data.train_images[index], labels.train[index], index,
                   data.mean, data.std)


def train_step_on_feed(spec: ProgramSpec, state: TrainState, member: MemberArrays, _labels,
                       feed: Feed) -> TrainState:
  """One SGD step of one member on a host-fed training batch (the streaming input path)."""
  y = batch_labels(spec, member, feed.labels, feed.positions, "train")
  return _sgd_step(spec, state, member, feed.images, y, feed.positions, feed.mean, feed.std)


def epoch_batches(spec: ProgramSpec, member: MemberArrays, num_train: int, epoch) -> jax.Array:
  """The member's example indices for one epoch, [steps_per_epoch, batch_size].

  A fresh permutation each epoch; its last partial batch is dropped (the permutation changes
  every epoch, so every example is seen).
  """
  order_key = jax.random.fold_in(jax.random.fold_in(member.key(), _ORDER), epoch)
  perm = jax.random.permutation(order_key, num_train)
  return perm[:spec.steps_per_epoch * spec.batch_size].reshape(spec.steps_per_epoch,
                                                               spec.batch_size)


def train_chunk(spec: ProgramSpec, state: TrainState, member: MemberArrays,
                labels: MemberLabels, data: DeviceData, first_step, num_steps) -> TrainState:
  """Steps [first_step, first_step + num_steps) of one member as one program: a loop over
  the epochs they touch (each epoch's order drawn once), and within each over its steps.

  The bounds are traced values, so one compiled program serves every chunk, whole epochs or
  a fraction of one (evaluation every `eval_every_steps`).
  """
  num_train = data.train_images.shape[0]
  spe = spec.steps_per_epoch
  end = first_step + num_steps

  def epoch(e, state):
    batches = epoch_batches(spec, member, num_train, e)
    lo = jnp.maximum(first_step - e * spe, 0)
    hi = jnp.minimum(end - e * spe, spe)
    return jax.lax.fori_loop(
        lo, hi, lambda p, s: train_step(spec, s, member, labels, data, batches[p]), state)

  return jax.lax.fori_loop(first_step // spe, (end + spe - 1) // spe, epoch, state)


def train_step_in_epoch(spec: ProgramSpec, state: TrainState, member: MemberArrays,
                        labels: MemberLabels, data: DeviceData, epoch, position) -> TrainState:
  """Step `position` of `epoch` as its own program (the host-stepped loop)."""
  batches = epoch_batches(spec, member, data.train_images.shape[0], epoch)
  return train_step(spec, state, member, labels, data, batches[position])


def member_examples(spec: ProgramSpec, member: MemberArrays, labels: MemberLabels,
                    data: DeviceData, index, split: str = "train"):
  """(inputs, labels) of the examples at `index` of `split` exactly as one member's
  evaluation sees them: its randomization, eval-mode preprocessing, its own labels."""
  images = data.train_images if split == "train" else data.test_images
  y = (labels.train if split == "train" else labels.test)[index]
  return _inputs(spec, images[index], index, member, split, False, data.mean, data.std), y


TOP_K = 5  # Table 2 reports top-5 accuracy besides top-1


SUMS = 5  # per eval batch: loss, top-1, top-k, top-1 on corrupted labels, corrupted labels


def _batch_sums(spec, state, member, images_u8, y, corrupted, index, valid, split, mean, std):
  """[loss sum, top-1 correct, top-k correct, top-1 correct among the examples whose label
  the member's corruption changed, their count] of one eval-mode batch, padding masked out."""
  x = _inputs(spec, images_u8, index, member, split, False, mean, std)
  logits = spec.model.apply(_variables(state), x).astype(jnp.float32)
  k = min(TOP_K, logits.shape[-1])
  loss = jnp.where(valid, cross_entropy(logits, y), 0.0)
  top1 = valid & (jnp.argmax(logits, -1) == y)
  topk = valid & jnp.any(jax.lax.top_k(logits, k)[1] == y[:, None], axis=-1)
  corrupted = valid & corrupted
  return jnp.stack([jnp.sum(loss), jnp.sum(top1), jnp.sum(topk), jnp.sum(top1 & corrupted),
                    jnp.sum(corrupted)]).astype(jnp.float32)


class Metrics(NamedTuple):
  """One evaluation point's numbers of a member (eval mode), each a scalar ([E] across
  members): what the evaluation programs return, read by name (never by column)."""

  train_loss: Any
  train_acc: Any
  train_top5: Any
  test_loss: Any          # NaN where the point measured no test split
  test_acc: Any
  test_top5: Any
  # Train accuracy on the examples whose label the member's corruption kept / changed
  # (Arpit et al. 2017's memorization dynamics; NaN where a member has none of them).
  train_acc_clean: Any
  train_acc_corrupted: Any
  nonfinite: Any          # 1.0 where a training loss was NaN/inf (the loop: diverged)
  train_examples: Any     # how many training examples the train metrics cover


# What a metrics record reports by these names: every field but the two the loop reads.
METRIC_NAMES = tuple(f for f in Metrics._fields if f not in ("nonfinite", "train_examples"))


def metrics_from_sums(train, test, num_train, num_test, nonfinite) -> Metrics:
  """The Metrics of the per-split SUMS over `num_train` / `num_test` examples."""
  clean = num_train - train[4]
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  return Metrics(
      train_loss=f32(train[0] / num_train), train_acc=f32(train[1] / num_train),
      train_top5=f32(train[2] / num_train), test_loss=f32(test[0] / num_test),
      test_acc=f32(test[1] / num_test), test_top5=f32(test[2] / num_test),
      train_acc_clean=f32(jnp.where(clean > 0, (train[1] - train[3]) / jnp.maximum(clean, 1),
                                    jnp.nan)),
      train_acc_corrupted=f32(jnp.where(train[4] > 0, train[3] / jnp.maximum(train[4], 1),
                                        jnp.nan)),
      nonfinite=f32(nonfinite), train_examples=f32(num_train))


def evaluate(spec: ProgramSpec, state: TrainState, member: MemberArrays, labels: MemberLabels,
             data: DeviceData) -> Metrics:
  """The Metrics over the full splits, eval mode; `nonfinite` rides along so that the host
  fetches one small replicated pytree per evaluation point."""
  def split_sums(split, split_labels, corrupted):
    images = data.train_images if split == "train" else data.test_images
    n = split_labels.shape[0]
    size = min(spec.eval_batch_size, n)
    num_batches = -(-n // size)
    index = jnp.arange(num_batches * size).reshape(num_batches, size)

    def batch(idx):
      valid = idx < n
      idx = _data_parallel(spec, jnp.minimum(idx, n - 1))
      return _batch_sums(spec, state, member, images[idx], split_labels[idx], corrupted[idx],
                         idx, valid, split, data.mean, data.std)

    return jnp.sum(jax.lax.map(batch, index), axis=0)

  train = split_sums("train", labels.train, labels.train_corrupted)
  test = split_sums("test", labels.test, jnp.zeros(labels.test.shape, bool))
  return metrics_from_sums(train, test, labels.train.shape[0], labels.test.shape[0],
                           state.nonfinite)


# The fixed order in which evaluate_train_until visits the training split: a random one, so
# that the examples an early stop leaves out are no particular part of the split.
_EVAL_ORDER_SEED = 20170101


def evaluate_train_until(spec: ProgramSpec, state: TrainState, member: MemberArrays,
                         limited: tuple[MemberLabels, jax.Array], data: DeviceData) -> jax.Array:
  """The train split's SUMS and the number of examples they cover, eval mode, in a fixed
  random order, stopping after the first batch at which the member has made more than
  `max_errors` top-1 errors (`limited` = (labels, max_errors), max_errors per member).

  With max_errors = the most errors that still reach memorize_threshold
  (loop.max_errors_below), a member that memorized is always evaluated on every example (it
  never exceeds them), so it is found at the same step as by a full evaluation; one that has
  not is found wanting after as few batches as its errors allow. At least one batch is
  evaluated.
  """
  labels, max_errors = limited
  n = labels.train.shape[0]
  size = min(spec.eval_batch_size, n)
  num_batches = -(-n // size)
  order = jax.random.permutation(jax.random.key(_EVAL_ORDER_SEED), n)
  order = jnp.concatenate([order, jnp.zeros(num_batches * size - n, order.dtype)])
  order = order.reshape(num_batches, size)

  def go_on(carry):
    b, sums = carry
    errors = jnp.minimum(b * size, n).astype(jnp.float32) - sums[1]
    return (b == 0) | ((b < num_batches) & (errors <= max_errors))

  def batch(carry):
    b, sums = carry
    valid = b * size + jnp.arange(size) < n
    idx = _data_parallel(spec, order[b])
    out = _batch_sums(spec, state, member, data.train_images[idx], labels.train[idx],
                      labels.train_corrupted[idx], idx, valid, "train", data.mean, data.std)
    return b + 1, sums + out

  b, sums = jax.lax.while_loop(go_on, batch, (jnp.int32(0), jnp.zeros(SUMS, jnp.float32)))
  return jnp.concatenate([sums, jnp.minimum(b * size, n).astype(jnp.float32)[None]])


def metrics_of_train_sums(sums: jax.Array, nonfinite: jax.Array) -> Metrics:
  """evaluate's Metrics from evaluate_train_until's [SUMS, examples]: the train metrics over
  those examples, the test metrics NaN."""
  nan = jnp.full(SUMS, jnp.nan, jnp.float32)
  return metrics_from_sums(sums[:SUMS], nan, sums[SUMS], 1, nonfinite)


def evaluate_feed(spec: ProgramSpec, state: TrainState, member: MemberArrays, _labels,
                  feed: Feed, split: str) -> jax.Array:
  """The SUMS of one host-fed eval batch of `split`."""
  y = batch_labels(spec, member, feed.labels, feed.positions, split)
  return _batch_sums(spec, state, member, feed.images, y, y != feed.labels, feed.positions,
                     feed.valid, split, feed.mean, feed.std)


def steps_per_epoch(num_train: int, batch_size: int) -> int:
  return num_train // batch_size


def lr_interval_steps(every_epochs: float, steps_per_epoch_: int) -> int:
  return max(1, int(np.round(every_epochs * steps_per_epoch_)))
