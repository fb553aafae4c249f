"""The official CIFAR-10 release (binary or python version), read from a local path.

Accepts the extracted directory or the downloaded `.tar.gz`. The python version is pickled;
it is read with an unpickler that only rebuilds numpy arrays, dicts, lists and bytes, so a
user's file can never run code.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np

from rethinking_jax.base.errors import UserError
from rethinking_jax.data.dataset import Dataset

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}
RECORD_BYTES = 1 + 32 * 32 * 3


class _ArraysOnlyUnpickler(pickle.Unpickler):
  def find_class(self, module, name):
    if (module, name) in _SAFE_GLOBALS:
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 file")


def _read_members(path: str) -> dict[str, bytes]:
  """Maps file basenames to contents, from a directory tree or a tar archive."""
  files = {}
  if os.path.isdir(path):
    for root, _, names in os.walk(path):
      for n in names:
        if n in TRAIN_FILES + TEST_FILES or n.endswith(".bin"):
          with open(os.path.join(root, n), "rb") as f:
            files[n] = f.read()
  elif os.path.isfile(path) and tarfile.is_tarfile(path):
    with tarfile.open(path) as tar:
      for member in tar.getmembers():
        n = os.path.basename(member.name)
        if member.isfile() and (n in TRAIN_FILES + TEST_FILES or n.endswith(".bin")):
          files[n] = tar.extractfile(member).read()
  else:
    raise UserError(f"cifar10_archive: {path!r} is neither a directory nor a tar archive; "
                    "download cifar-10-python.tar.gz or cifar-10-binary.tar.gz from "
                    "https://www.cs.toronto.edu/~kriz/cifar.html and pass its path as "
                    "--config.data_dir")
  return files


def _decode_python(blob: bytes, name: str):
  try:
    batch = _ArraysOnlyUnpickler(io.BytesIO(blob), encoding="bytes").load()
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
    raise UserError(f"cifar10_archive: {name} is not a CIFAR-10 python batch ({err})"
                    ) from None
  if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
    raise UserError(f"cifar10_archive: {name} is not a CIFAR-10 python batch (no data and "
                    "labels arrays)")
  data = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return data, np.asarray(batch[b"labels"], np.int32)


def _decode_binary(blob: bytes, name: str):
  if len(blob) % RECORD_BYTES:
    raise UserError(f"cifar10_archive: {name} is truncated ({len(blob)} bytes is not a "
                    f"multiple of {RECORD_BYTES})")
  records = np.frombuffer(blob, np.uint8).reshape(-1, RECORD_BYTES)
  images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), records[:, 0].astype(np.int32)


def load_cifar10_archive(path: str) -> Dataset:
  """CIFAR-10 from the official python or binary release at `path`."""
  if not path:
    raise UserError("data_dir: the cifar10_archive dataset needs --config.data_dir=PATH to "
                    "cifar-10-python.tar.gz / cifar-10-binary.tar.gz or its extracted folder")
  if not os.path.exists(path):
    raise UserError(f"data_dir: {path!r} does not exist (dataset cifar10_archive)")
  files = _read_members(path)
  if all(n in files for n in TRAIN_FILES + TEST_FILES):
    decode, train, test = _decode_python, TRAIN_FILES, TEST_FILES
  elif all(f"{n}.bin" in files for n in TRAIN_FILES + TEST_FILES):
    decode = _decode_binary
    train, test = [f"{n}.bin" for n in TRAIN_FILES], [f"{n}.bin" for n in TEST_FILES]
  else:
    raise UserError(f"cifar10_archive: {path!r} holds neither the python (data_batch_1..5, "
                    "test_batch) nor the binary (data_batch_1..5.bin, test_batch.bin) release")

  def split(names):
    parts = [decode(files[n], n) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

  return Dataset("cifar10", *split(train), *split(test), num_classes=10)
