"""Datasets (host numpy), on-device preprocessing and the paper's randomization tests.

The in-memory sources are one registry (data/sources.py); inputs.py turns a run's config into
the dataset of its input path. This package re-exports both.
"""

from __future__ import annotations

from rethinking_jax.data import sources
from rethinking_jax.data.dataset import Dataset, subset_indices
from rethinking_jax.data.inputs import from_config, load_dataset, streams
from rethinking_jax.data.sources import (
    STREAMED_DATASETS,
    TFDS_DATASETS,
    LoadOptions,
    load,
    register_source,
)


def __getattr__(name: str):
  """`data.DATASETS` and `data.SOURCES` are the registry's own, current after a later
  register_source."""
  if name in ("DATASETS", "SOURCES"):
    return getattr(sources, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DATASETS", "SOURCES", "STREAMED_DATASETS", "TFDS_DATASETS", "Dataset",
           "LoadOptions", "from_config", "load", "load_dataset", "register_source", "streams",
           "subset_indices"]
