"""Validation and resolution of a run config, before anything is compiled or written."""

from __future__ import annotations

import dataclasses

from rethinking_jax import data, fields, models, xla_cpu
from rethinking_jax.data import pipeline, preprocess, randomize, stream, tfds_source
from rethinking_jax.data.inputs import streams
from rethinking_jax.engine import members as members_lib
from rethinking_jax.engine.strategies import STEP_LOOPS, STRATEGIES
from rethinking_jax.errors import UserError, unknown_name
from rethinking_jax.reports import tensorboard


def _require(ok: bool, message: str):
  if not ok:
    raise UserError(message)


def _one_of(field: str, value, allowed):
  if value not in allowed:
    raise unknown_name(field, value, allowed)


def validate(config) -> None:
  """Raises UserError (one line: the field and what is allowed) for a bad config."""
  c = config
  _one_of("dataset", c.dataset, data.DATASETS)
  _one_of("model", c.model, models.NAMES)
  _one_of("input_pipeline", c.input_pipeline, INPUT_PIPELINES)
  _require(not (c.input_pipeline == "device" and c.dataset in data.STREAMED_DATASETS),
           f"input_pipeline: {c.dataset} does not fit in device memory; allowed: auto, stream")
  _require(c.image_size >= 0, f"image_size: {c.image_size} must be >= 0 (0 = keep the size)")
  _require(c.image_size == 0 or streams(c),
           f"image_size: {c.image_size} resizes images on the streaming input path only; "
           "allowed with input_pipeline=device: 0 (or set input_pipeline=stream)")
  _require(c.stream_workers >= 1, f"stream_workers: {c.stream_workers} must be >= 1")
  _one_of("stream_reader", c.get("stream_reader", "auto"), stream.READERS)
  _require(c.prefetch_batches >= 1, f"prefetch_batches: {c.prefetch_batches} must be >= 1")
  _require(c.eval_train_examples >= 0,
           f"eval_train_examples: {c.eval_train_examples} must be >= 0 (0 = all)")
  _one_of("member_strategy", c.member_strategy, STRATEGIES)
  _one_of("step_loop", c.step_loop, STEP_LOOPS)
  _one_of("train_transform", c.train_transform, pipeline.TRANSFORMS)
  _one_of("tfds_reader", c.tfds_reader, tfds_source.READERS)
  _one_of("compute_dtype", c.compute_dtype, ("float32", "bfloat16"))
  _one_of("layer_impl", c.layer_impl, models.LAYER_IMPLS)
  _one_of("conv_impl", c.conv_impl, xla_cpu.CONV_IMPLS)
  for spec in fields.split(c.randomizations):
    randomize.parse(spec)
  _require(bool(fields.split(c.randomizations)), "randomizations: empty; allowed: a "
           f"comma-separated list of {', '.join(randomize.KINDS)} (corrupt_labels:P)")
  _require(bool(fields.split(c.seeds)), "seeds: empty; give comma-separated ints, e.g. seeds=0,1,2")
  fields.numbers("seeds", c.seeds, int, minimum=0, strict=False)
  fields.numbers("learning_rates", c.learning_rates, float, minimum=0.0)
  fields.numbers("weight_decays", c.weight_decays, float, minimum=0.0, strict=False)
  _require(c.batch_size > 0, f"batch_size: {c.batch_size} must be a positive integer")
  _require(c.eval_batch_size > 0, f"eval_batch_size: {c.eval_batch_size} must be positive")
  _require(c.get("num_classes", 0) == 0 or (c.num_classes >= 2 and not streams(c)),
           f"num_classes: {c.get('num_classes')} folds the labels of the device input path; "
           "allowed: 0 (the dataset's classes), or an integer >= 2 with input_pipeline=device")
  if c.get("tensorboard"):
    tensorboard.check_available()
  _require(c.learning_rate is None or c.learning_rate > 0,
           f"learning_rate: {c.learning_rate} must be > 0 (or unset for the paper's value)")
  _require(c.weight_decay >= 0, f"weight_decay: {c.weight_decay} must be >= 0")
  _require(0 <= c.momentum < 1, f"momentum: {c.momentum} must be in [0, 1)")
  _require(0 < c.lr_decay_rate <= 1, f"lr_decay_rate: {c.lr_decay_rate} must be in (0, 1]")
  _require(c.lr_decay_every_epochs > 0,
           f"lr_decay_every_epochs: {c.lr_decay_every_epochs} must be > 0")
  _require(c.num_epochs > 0, f"num_epochs: {c.num_epochs} must be a positive integer")
  _require(c.eval_every_epochs > 0, f"eval_every_epochs: {c.eval_every_epochs} must be > 0")
  _require(c.eval_every_steps >= 0, f"eval_every_steps: {c.eval_every_steps} must be >= 0 "
           "(0 = every eval_every_epochs epochs)")
  _require(c.extra_epochs >= 0, f"extra_epochs: {c.extra_epochs} must be >= 0")
  _require(isinstance(c.eval_full_every, int) and c.eval_full_every >= 1,
           f"eval_full_every: {c.eval_full_every} must be an integer >= 1 (1 = every "
           "evaluation point in full)")
  _require(c.eval_full_every == 1 or not streams(c),
           f"eval_full_every: {c.eval_full_every} needs the device input path (the streamed "
           "one evaluates every point in full); allowed with input_pipeline=stream: 1")
  _require(0 < c.memorize_threshold <= 1,
           f"memorize_threshold: {c.memorize_threshold} must be in (0, 1]")
  _require(0 <= c.dropout_rate < 1, f"dropout_rate: {c.dropout_rate} must be in [0, 1)")
  _require(c.dropout_rate == 0 or models.record(c.model).dropout,
           f"dropout_rate: {c.model} has no dropout layers; allowed: 0")
  _require(0 < c.bn_momentum < 1, f"bn_momentum: {c.bn_momentum} must be in (0, 1)")
  _require(c.bn_epsilon > 0, f"bn_epsilon: {c.bn_epsilon} must be > 0")
  _require(c.num_train >= 0 and c.num_test >= 0, "num_train/num_test: must be >= 0 (0 = all)")
  _require(c.checkpoint_every_epochs >= 0,
           f"checkpoint_every_epochs: {c.checkpoint_every_epochs} must be >= 0 (0 = only at "
           "the end and on SIGTERM/SIGINT)")
  _require(c.checkpoints_to_keep >= 1,
           f"checkpoints_to_keep: {c.checkpoints_to_keep} must be >= 1")
  _require(c.crop_size >= 0, f"crop_size: {c.crop_size} must be >= 0 (0 = no crop)")
  shape = c.synthetic_shape
  _require(isinstance(shape, (tuple, list)) and len(shape) == 3
           and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape),
           f"synthetic_shape: {shape!r} is not three positive integers; allowed: "
           "(height, width, channels), e.g. synthetic_shape=(32,32,3)")
  _require(c.synthetic_train > 0 and c.synthetic_test > 0,
           "synthetic_train/synthetic_test: must be positive numbers of examples")
  _require(c.dataset != "image_folder" or bool(c.data_dir),
           "data_dir: dataset image_folder needs --config.data_dir=PATH to a folder or a "
           ".tar/.tar.gz archive of <split>/<class>/<image> files")
  _require(c.dataset != "cifar10_archive" or bool(c.data_dir),
           "data_dir: dataset cifar10_archive needs --config.data_dir=PATH to the official "
           "CIFAR-10 archive (python or binary version)")


INPUT_PIPELINES = ("auto", "device", "stream")


@dataclasses.dataclass(frozen=True)
class Resolved:
  """A validated config with everything derived that the engine needs."""

  learning_rate: float
  members: list[members_lib.MemberSpec]


def resolve(config) -> Resolved:
  validate(config)
  return Resolved(members_lib.default_learning_rate(config), members_lib.from_config(config))


def check_against_data(config, dataset) -> None:
  """Checks that need the opened dataset (still before anything is written)."""
  n = dataset.num_train
  _require(config.batch_size <= n, f"batch_size: {config.batch_size} is larger than the "
           f"training set ({n} examples of {dataset.name}); allowed: 1..{n}")
  smallest = models.record(config.model).min_input
  side = min(preprocess.cropped_shape(dataset.image_shape, config.crop_size)[:2])
  _require(side >= smallest, f"crop_size: {config.model} needs inputs of at least "
           f"{smallest}x{smallest}, these are {side}x{side} (crop_size={config.crop_size}, "
           f"images {dataset.image_shape[0]}x{dataset.image_shape[1]}); allowed: "
           f"crop_size >= {smallest} or 0, on images at least that large")
