"""Streamed datasets: read from disk batch by batch, for data that does not fit on the device.

ImageNet (1.28M images, Table 2) cannot be resident on an accelerator as the CIFAR10 runs
are, so its splits are random-access readers instead: `read(i) -> (uint8 [H,W,C], label)`.
Images of any size are brought to one square on the host (shorter side resized to
`image_size`, then the central square) so that a batch is one uint8 array; crops, flips,
randomizations and whitening stay on the device, the same code as the in-memory path.

Readers: a tfds dataset through `tfds.data_source` (ArrayRecord, no TensorFlow), a directory
of `<split>/<class>/<image>` files (the layout ImageNet's own archives unpack to), or the
arrays of an in-memory dataset (which makes the two input paths comparable number for number).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np

from rethinking_jax.base.errors import UserError
from rethinking_jax.data import image_folder, preprocess, tfds_source
from rethinking_jax.data.dataset import Dataset, subset_indices
from rethinking_jax.data.decoding import BatchReader, FolderSplit, read_square

READERS = ("auto", "threads", "processes")

# tfds split names (train, test) where they are not "train" and "test".
TFDS_SPLITS = {"imagenet2012": ("train", "validation")}
STATS_EXAMPLES = 4096  # the Gaussian test's channel statistics come from this many images


def prefetch(fn, items: Iterable, depth: int) -> Iterator:
  """Yields fn(item) for `items` in order, computing up to `depth` of them ahead on one
  background thread (so results never depend on timing); errors surface at their item."""
  with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prefetch") as pool:
    pending = collections.deque()
    items = iter(items)
    try:
      while True:
        while len(pending) < max(1, depth):
          item = next(items, None)
          if item is None:
            break
          pending.append(pool.submit(fn, item))
        if not pending:
          return
        yield pending.popleft().result()
    finally:
      for future in pending:
        future.cancel()


class Split(Protocol):
  """Random access to one split of a dataset."""

  def __len__(self) -> int: ...

  def read(self, i: int) -> tuple[np.ndarray, int]: ...


@dataclasses.dataclass(frozen=True)
class ArraySplit:
  """A split held in host memory (an in-memory dataset, streamed)."""

  images: np.ndarray
  labels: np.ndarray

  def __len__(self):
    return len(self.labels)

  def read(self, i):
    return self.images[i], int(self.labels[i])


@dataclasses.dataclass(frozen=True)
class Subset:
  """The examples of a split at `index` (a fixed random subset, dataset.subset_indices)."""

  split: Split
  index: np.ndarray

  def __len__(self):
    return len(self.index)

  def read(self, i):
    return self.split.read(int(self.index[i]))


class TfdsSplit:
  """A prepared tfds split read through `tfds.data_source` (ArrayRecord, TF-free); pickled
  as its name, split and directory (a reader process opens it again)."""

  def __init__(self, name: str, split: str, data_dir: str | None):
    self._where = (name, split, data_dir)
    self._open()

  def __getstate__(self):
    return self._where

  def __setstate__(self, where):
    self._where = where
    self._open()

  def _open(self):
    import tensorflow_datasets as tfds

    name, split, data_dir = self._where
    where = data_dir or tfds_source.default_data_dir()
    try:
      self._source = tfds.data_source(name, split=split, data_dir=data_dir or None,
                                      download=False)
    except Exception as err:  # tfds raises many types for a missing or non-ArrayRecord dataset
      raise UserError(
          f"dataset {name!r} split {split!r} cannot be streamed from {where} ({type(err).__name__}"
          f"); it must be prepared as ArrayRecord: "
          f"{tfds_source.prepare_hint(name, where)}") from err

  def __len__(self):
    return len(self._source)

  def read(self, i):
    item = self._source[int(i)]
    return np.asarray(item["image"], np.uint8), int(item["label"])


def _base_split(split: Split) -> Split:
  """The split under any Subsets (what a reader process gets, pickled once)."""
  while isinstance(split, Subset):
    split = split.split
  return split


def _base_index(split: Split, index: np.ndarray) -> np.ndarray:
  """`index` of `split` as positions in its _base_split."""
  index = np.asarray(index)
  while isinstance(split, Subset):
    split, index = split.split, split.index[index]
  return index


@dataclasses.dataclass
class StreamedDataset:
  """A dataset read batch by batch: two splits, one image size, `workers` readers.

  `reader`: `threads` (this process), `processes` (grain worker processes, each decoding
  whole batches) or `auto` (processes for an image-folder directory with more than one
  worker; threads for tfds sources, whose process path is untested here, and for arrays
  already in memory). Both give the same bytes.
  """

  name: str
  train: Split
  test: Split
  num_classes: int
  image_size: int
  channels: int
  workers: int = 8
  reader: str = "auto"

  def __post_init__(self):
    self._threads = None  # started on the first read

  @property
  def uses_processes(self) -> bool:
    files = isinstance(_base_split(self.train), FolderSplit)
    return self.reader == "processes" or (self.reader == "auto" and files
                                          and self.workers > 1)

  @property
  def num_train(self) -> int:
    return len(self.train)

  @property
  def num_test(self) -> int:
    return len(self.test)

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return (self.image_size, self.image_size, self.channels)

  def split(self, name: str) -> Split:
    return self.train if name == "train" else self.test

  def read_batches(self, split: str, batches: Sequence[np.ndarray],
                   depth: int = 4) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """uint8 [n, S, S, C] images and int32 [n] true labels of `split` at each index array
    of `batches`, in order, read up to `depth` batches ahead."""
    if self.uses_processes:
      yield from self._grain_batches(split, batches, depth)
    else:
      yield from prefetch(lambda index: self.read_rows(split, index), batches, depth)

  def read_rows(self, split: str, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [n, S, S, C] images and int32 [n] true labels of `split` at `index`."""
    if self.uses_processes:  # one chunk per worker, so that all of them decode
      chunks = [c for c in np.array_split(np.asarray(index), self.workers) if len(c)] or [index]
      parts = list(self._grain_batches(split, chunks, len(chunks)))
      return (np.concatenate([images for images, _ in parts]),
              np.concatenate([labels for _, labels in parts]))
    if self._threads is None:
      self._threads = concurrent.futures.ThreadPoolExecutor(max(1, self.workers),
                                                            thread_name_prefix="stream")
    source, where = self.split(split), f"{self.name}/{split}"
    pairs = list(self._threads.map(
        lambda i: read_square(source, i, self.image_size, self.image_shape, where), index))
    return (np.stack([image for image, _ in pairs]),
            np.asarray([label for _, label in pairs], np.int32))

  def _grain_batches(self, split: str, batches: Sequence[np.ndarray], depth: int):
    """The batches through grain: `workers` spawned processes, each reading whole batches
    of the split under any Subsets (decoding.BatchReader), one batch in flight per worker
    beyond `depth` // workers buffered."""
    grain = _import_grain()
    source = self.split(split)
    reader = BatchReader(_base_split(source), self.image_size, self.image_shape,
                         f"{self.name}/{split}")
    dataset = grain.MapDataset.source([_base_index(source, index) for index in batches])
    dataset = dataset.map(reader).to_iter_dataset(
        grain.ReadOptions(num_threads=1, prefetch_buffer_size=1))
    iterator = iter(dataset.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=self.workers, per_worker_buffer_size=max(1, depth // self.workers))))
    try:
      yield from iterator  # a worker's own error (a UserError included) arrives as itself
    except RuntimeError as err:
      if "terminated unexpectedly" not in str(err):  # grain's words for a dead worker
        raise
      raise UserError(f"stream_reader: a reader process of {self.name} died "
                      f"({str(err).splitlines()[0]}); out of memory? use fewer "
                      "stream_workers or stream_reader=threads") from None
    finally:
      iterator.close()

  def channel_stats(self, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """preprocess.channel_stats of the first STATS_EXAMPLES training images (not all of
    them: that would read the whole split once)."""
    images, _ = self.read_rows("train", np.arange(min(STATS_EXAMPLES, self.num_train)))
    return preprocess.channel_stats(images, crop)

  def subset(self, num_train: int = 0, num_test: int = 0) -> StreamedDataset:
    """A fixed random `num_train` / `num_test` examples of each split (0 keeps it whole),
    the same ones as Dataset.subset picks."""
    def pick(split, n):
      return Subset(split, subset_indices(len(split), n)) if 0 < n < len(split) else split

    out = dataclasses.replace(self, train=pick(self.train, num_train),
                              test=pick(self.test, num_test))
    self.close()
    return out

  def close(self):
    """Stops the reader threads (grain's processes end with their iterator)."""
    if self._threads is not None:
      self._threads.shutdown(wait=False, cancel_futures=True)
    self._threads = None


def _import_grain():
  """grain (a dependency, imported where reader processes start: its import is slow), with
  its absl flags marked parsed when no absl app parsed them (a library or a test;
  `rethinking_jax.main` parses them): grain reads them when it starts its workers."""
  import grain
  from absl import flags

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  return grain


def _first_shape(split: Split) -> tuple[int, ...]:
  if not len(split):
    raise UserError("dataset: a split to stream is empty")
  image, _ = split.read(0)
  return image.shape if image.ndim == 3 else (*image.shape, 1)


def open_stream(name: str, *, data_dir: str = "", image_size: int = 0, workers: int = 8,
                in_memory: Dataset | None = None, class_order: str = "",
                reader: str = "auto") -> StreamedDataset:
  """The streamed dataset `name`: a tfds dataset, `image_folder` (a directory) or, with
  `in_memory`, that dataset's arrays."""
  if in_memory is not None:
    train = ArraySplit(in_memory.train_images, in_memory.train_labels)
    test = ArraySplit(in_memory.test_images, in_memory.test_labels)
    num_classes = in_memory.num_classes
  elif name == "image_folder":
    train, test, num_classes = _folder_splits(data_dir, class_order)
  else:
    import tensorflow_datasets as tfds

    train_split, test_split = TFDS_SPLITS.get(name, ("train", "test"))
    train = TfdsSplit(name, train_split, data_dir)
    test = TfdsSplit(name, test_split, data_dir)
    num_classes = tfds.builder(name, data_dir=data_dir or None).info.features[
        "label"].num_classes
  shape = _first_shape(train)
  return StreamedDataset(name if in_memory is None else in_memory.name, train, test,
                         num_classes, image_size or shape[0], shape[-1], workers, reader)


def _folder_splits(root: str, class_order: str):
  if not root or not os.path.isdir(root):
    raise UserError(f"data_dir: {root!r} is not a directory; streaming an image_folder needs "
                    "a directory of <split>/<class>/<image> files (unpack a .tar first, or use "
                    "input_pipeline=device for archives that fit in memory)")
  test_name = image_folder.test_folder(
      {s for s in image_folder.TEST_FOLDERS if os.path.isdir(os.path.join(root, s))})
  if not os.path.isdir(os.path.join(root, "train")) or test_name is None:
    raise UserError(f"data_dir: {root!r} needs train/<class>/ and one of "
                    f"{', '.join(image_folder.TEST_FOLDERS)}/<class>/ folders")
  found = sorted({c for s in ("train", test_name)
                  for c in os.listdir(os.path.join(root, s))
                  if os.path.isdir(os.path.join(root, s, c))})
  classes = image_folder.class_list(found, class_order)
  train, test = FolderSplit(root, "train", classes), FolderSplit(root, test_name, classes)
  if not len(train) or not len(test):
    raise UserError(f"data_dir: {root!r} has no images under train/<class>/ or "
                    f"{test_name}/<class>/")
  return train, test, len(classes)
