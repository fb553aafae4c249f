"""A config's dataset, opened for the input path it trains on: the one place where config
fields become data (train, fooling, the measures and the benchmarks all come here).

The path is decided once (`streams`): in memory and then resident on the device, or read
from disk batch by batch (a stream.StreamedDataset) -- the datasets that do not fit
(STREAMED_DATASETS) always stream; any other streams when asked to (input_pipeline=stream).
"""

from __future__ import annotations

import functools
import os

from rethinking_jax.base import sections
from rethinking_jax.base.errors import UserError, one_of, require
from rethinking_jax.data import pipeline, sources, stream, tfds_source
from rethinking_jax.data.dataset import Dataset

INPUT_PIPELINES = ("auto", "device", "stream")

# What a training run reads, and all that the theory experiments (which train nothing) take
# from a run config. How the streaming path reads may change on resume (the same batches).
SECTION = sections.Section("data", {
    # cifar10 | mnist | cifar10_archive | image_folder | digits | synthetic | imagenet2012
    # (Table 2; streamed)
    "dataset": "cifar10",
    "data_dir": "",                # tfds data dir (default $TFDS_DATA_DIR) or the archive path
    "tfds_reader": "auto",         # auto | data_source | tf
    "class_order": "",             # image_folder: '' (sorted names), cifar10, or a,b,c,...
    "cache_dir": "",               # image_folder array cache ('' = ~/.cache/rethinking_jax)
    "num_train": 0,                # use a fixed random N training examples (0 = all)
    "num_test": 0,                 # use a fixed random N test examples (0 = all)
    "synthetic_shape": (32, 32, 3),
    "synthetic_train": 1024,
    "synthetic_test": 256,
    "crop_size": 28,               # crop follows the input: none when images are not larger
    # > 0: labels folded to this many classes (label mod K); 2 with random_labels: the
    # Rademacher test (configs/rademacher.py)
    "num_classes": 0,
    # Input path: `device` keeps the whole dataset on the device (CIFAR10, MNIST, ...);
    # `stream` reads it from disk batch by batch (ImageNet); auto = stream only for imagenet2012.
    "input_pipeline": "auto",      # auto | device | stream
    "image_size": 0,               # stream: every image resized to this square first (0 = keep)
    "stream_workers": 8,           # stream: readers decoding images (threads or processes)
    # stream: auto | threads | processes (auto: processes for files on disk when
    # stream_workers > 1); the same bytes
    "stream_reader": "auto",
    "prefetch_batches": 4,         # stream: batches read ahead of the device
    "eval_train_examples": 0,      # stream: train accuracy over a fixed random subset (0 = all)
    "train_transform": "center_crop",  # center_crop | random_crop | augment  [default]
}, resume_may_change=frozenset({"stream_workers", "stream_reader", "prefetch_batches"}))


def check_config(c) -> None:
  """The data fields: which dataset, read how, cut and shaped how (UserError, one line)."""
  one_of("dataset", c.dataset, sources.DATASETS)
  one_of("input_pipeline", c.input_pipeline, INPUT_PIPELINES)
  require(not (c.input_pipeline == "device" and c.dataset in sources.STREAMED_DATASETS),
          f"input_pipeline: {c.dataset} does not fit in device memory; allowed: auto, stream")
  require(c.image_size >= 0, f"image_size: {c.image_size} must be >= 0 (0 = keep the size)")
  require(c.image_size == 0 or streams(c),
          f"image_size: {c.image_size} resizes images on the streaming input path only; "
          "allowed with input_pipeline=device: 0 (or set input_pipeline=stream)")
  require(c.stream_workers >= 1, f"stream_workers: {c.stream_workers} must be >= 1")
  one_of("stream_reader", c.get("stream_reader", "auto"), stream.READERS)
  require(c.prefetch_batches >= 1, f"prefetch_batches: {c.prefetch_batches} must be >= 1")
  require(c.eval_train_examples >= 0,
          f"eval_train_examples: {c.eval_train_examples} must be >= 0 (0 = all)")
  one_of("train_transform", c.train_transform, pipeline.TRANSFORMS)
  one_of("tfds_reader", c.tfds_reader, tfds_source.READERS)
  require(c.get("num_classes", 0) == 0 or (c.num_classes >= 2 and not streams(c)),
          f"num_classes: {c.get('num_classes')} folds the labels of the device input path; "
          "allowed: 0 (the dataset's classes), or an integer >= 2 with input_pipeline=device")
  require(c.num_train >= 0 and c.num_test >= 0, "num_train/num_test: must be >= 0 (0 = all)")
  require(c.crop_size >= 0, f"crop_size: {c.crop_size} must be >= 0 (0 = no crop)")
  shape = c.synthetic_shape
  require(isinstance(shape, (tuple, list)) and len(shape) == 3
          and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape),
          f"synthetic_shape: {shape!r} is not three positive integers; allowed: "
          "(height, width, channels), e.g. synthetic_shape=(32,32,3)")
  require(c.synthetic_train > 0 and c.synthetic_test > 0,
          "synthetic_train/synthetic_test: must be positive numbers of examples")
  require(c.dataset != "image_folder" or bool(c.data_dir),
          "data_dir: dataset image_folder needs --config.data_dir=PATH to a folder or a "
          ".tar/.tar.gz archive of <split>/<class>/<image> files")
  require(c.dataset != "cifar10_archive" or bool(c.data_dir),
          "data_dir: dataset cifar10_archive needs --config.data_dir=PATH to the official "
          "CIFAR-10 archive (python or binary version)")


def streams(config) -> bool:
  """Whether the run reads its data batch by batch (auto: only datasets that must be)."""
  return config.input_pipeline == "stream" or (config.input_pipeline == "auto"
                                               and config.dataset in sources.STREAMED_DATASETS)


def check_subset(config, dataset) -> None:
  """num_train/num_test ask for at most what the dataset has (no silent clamping), and
  num_classes for at most its classes."""
  if config.get("num_classes", 0) > dataset.num_classes:
    raise UserError(f"num_classes: {config.get('num_classes')} is more than {dataset.name}'s "
                    f"{dataset.num_classes} classes; allowed: 0 or 2..{dataset.num_classes}")
  for field, asked, have in (("num_train", config.num_train, dataset.num_train),
                             ("num_test", config.num_test, dataset.num_test)):
    if asked > have:
      origin = " (the config argument subset=N sets it)" if field == "num_train" else ""
      raise UserError(f"{field}{origin}: {asked} is more than the {have:,} examples of "
                      f"{dataset.name}; allowed: 0 (all) or 1..{have}")


@functools.lru_cache(maxsize=2)
def _load(name, data_dir, tfds_reader, synthetic_shape, synthetic_train, synthetic_test,
          class_order, cache_dir) -> Dataset:
  """One read per dataset per process: the sub-runs of a suite share it (read-only)."""
  return sources.load(name, data_dir=data_dir, tfds_reader=tfds_reader,
                   synthetic_shape=synthetic_shape, synthetic_train=synthetic_train,
                   synthetic_test=synthetic_test, class_order=class_order, cache_dir=cache_dir)


def load_dataset(config) -> Dataset:
  """The config's dataset in host memory (the device input path), its subset and classes."""
  if config.dataset in sources.STREAMED_DATASETS:
    raise UserError(f"dataset: {config.dataset} is read from disk batch by batch "
                    "(input_pipeline=stream) and cannot be loaded into memory here")
  dataset = _load(config.dataset, config.data_dir or None, config.tfds_reader,
                  tuple(config.synthetic_shape), config.synthetic_train, config.synthetic_test,
                  config.get("class_order", ""), config.get("cache_dir", ""))
  check_subset(config, dataset)
  return dataset.subset(config.num_train, config.num_test).with_classes(
      config.get("num_classes", 0))


def open_stream(config) -> stream.StreamedDataset:
  """The config's dataset as a stream: tfds and image-folder directories read from disk, the
  other sources from their in-memory arrays."""
  on_disk = config.dataset in sources.TFDS_DATASETS or (
      config.dataset == "image_folder" and os.path.isdir(config.data_dir))
  source = stream.open_stream(
      config.dataset, data_dir=config.data_dir, image_size=config.image_size,
      workers=config.stream_workers, class_order=config.get("class_order", ""),
      reader=config.get("stream_reader", "auto"),
      in_memory=None if on_disk else load_dataset(config))  # already subset
  if not on_disk:
    return source
  check_subset(config, source)
  return source.subset(config.num_train, config.num_test)


def from_config(config) -> Dataset | stream.StreamedDataset:
  """The config's dataset for its input path: a Dataset or an open StreamedDataset (read from
  the config's data section only)."""
  c = SECTION.of(config)
  return open_stream(c) if streams(c) else load_dataset(c)
