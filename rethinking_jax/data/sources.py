"""The in-memory sources, one registry: SOURCES maps a dataset name to a loader that takes
LoadOptions (the config's data fields) and returns a Dataset. Adding a source is its module
plus one register_source line (docs/extending.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from rethinking_jax.base.errors import unknown_name
from rethinking_jax.data.cifar_archive import load_cifar10_archive
from rethinking_jax.data.dataset import Dataset
from rethinking_jax.data.digits import load_digits
from rethinking_jax.data.image_folder import load_image_folder
from rethinking_jax.data.synthetic import load_synthetic
from rethinking_jax.data.tfds_source import load_tfds

# imagenet2012 does not fit in memory: it is only streamed (data/stream.py); the others are
# loaded whole, and may be streamed too.
STREAMED_DATASETS = ("imagenet2012",)
TFDS_DATASETS = ("cifar10", "mnist", *STREAMED_DATASETS)


@dataclasses.dataclass(frozen=True)
class LoadOptions:
  """The config fields a source may read (each source reads the ones it needs)."""

  data_dir: str | None = None
  tfds_reader: str = "auto"
  synthetic_shape: tuple = (32, 32, 3)
  synthetic_train: int = 1024
  synthetic_test: int = 256
  synthetic_seed: int = 0
  class_order: str = ""
  cache_dir: str = ""


SOURCES: dict[str, Callable[[LoadOptions], Dataset]] = {}
DATASETS: tuple[str, ...] = STREAMED_DATASETS  # every name `dataset=` accepts


def register_source(name: str, loader: Callable[[LoadOptions], Dataset]) -> None:
  """Adds an in-memory dataset `name` (usable as `dataset=name` from then on)."""
  global DATASETS
  if name in SOURCES or name in STREAMED_DATASETS:
    raise ValueError(f"dataset {name!r} exists already")
  SOURCES[name] = loader
  DATASETS = (*SOURCES, *STREAMED_DATASETS)


register_source("cifar10", lambda o: load_tfds("cifar10", o.data_dir, reader=o.tfds_reader))
register_source("mnist", lambda o: load_tfds("mnist", o.data_dir, reader=o.tfds_reader))
register_source("cifar10_archive", lambda o: load_cifar10_archive(o.data_dir or ""))
register_source("image_folder", lambda o: load_image_folder(o.data_dir or "",
                                                            o.class_order or None,
                                                            o.cache_dir or None))
register_source("digits", lambda o: load_digits())
register_source("synthetic", lambda o: load_synthetic(
    o.synthetic_train, o.synthetic_test, tuple(o.synthetic_shape), seed=o.synthetic_seed))


def load(name: str, data_dir: str | None = None, tfds_reader: str = "auto",
         synthetic_shape=(32, 32, 3), synthetic_train: int = 1024,
         synthetic_test: int = 256, synthetic_seed: int = 0, class_order: str = "",
         cache_dir: str = "") -> Dataset:
  """Loads dataset `name` (one of SOURCES) into host memory."""
  if name not in SOURCES:
    raise unknown_name("dataset", name, DATASETS)
  return SOURCES[name](LoadOptions(data_dir, tfds_reader, tuple(synthetic_shape),
                                   synthetic_train, synthetic_test, synthetic_seed,
                                   class_order, cache_dir))
