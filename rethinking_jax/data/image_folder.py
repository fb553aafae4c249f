"""Image folders: `<root>/<split>/<class>/<image>` as a directory or a .tar / .tar.gz archive.

Decoded with Pillow (JPEG, PNG), classes in a given order, the `cifar10` order, or sorted by
name. Decoding tens of thousands of files is slow, so the result is cached as one uint8 array
file keyed by a hash of the source's content (and of the class order): a later run loads it
instead; a changed or truncated source gets a new key; a corrupt cache file is rebuilt with a
warning. This is also how users bring their own datasets.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import time
import zlib

import numpy as np
from absl import logging

from rethinking_jax.base import atomic_files
from rethinking_jax.base.errors import UserError
from rethinking_jax.data.dataset import Dataset
from rethinking_jax.data.decoding import IMAGE_SUFFIXES, decode

CLASS_ORDERS = {"cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                            "horse", "ship", "truck")}
SPLITS = ("train", "test")
# The one folder-layout rule of both readers (this one and data/stream.py): train/ and the
# first of these present as the test split (ImageNet's archives unpack to val/).
TEST_FOLDERS = ("test", "val", "validation")
_SPLIT_FOLDERS = ("train", *TEST_FOLDERS)
CACHE_VERSION = 1


def default_cache_dir() -> str:
  return os.environ.get("RETHINKING_JAX_CACHE",
                        os.path.join(os.path.expanduser("~"), ".cache", "rethinking_jax"))


def _entries(path: str) -> list:
  """[(split, class, name, read())] for every image of the source, in a stable order.

  Files that are not images at <split>/<class>/<image> (a README, an image outside a class
  folder) and class folders without images are left out, with a warning that names them.
  """
  found, ignored, folders = [], [], set()
  if os.path.isdir(path):
    for root, dirs, names in os.walk(path):
      rel_root = os.path.relpath(root, path)
      for d in dirs:
        if _parse(os.path.join(rel_root, d, "x.png")):
          folders.add(os.path.normpath(os.path.join(rel_root, d)))
      for name in names:
        rel = os.path.normpath(os.path.join(rel_root, name))
        full = os.path.join(root, name)
        if name.lower().endswith(IMAGE_SUFFIXES) and _parse(rel):
          found.append((*_parse(rel), rel, lambda full=full: _read_file(full)))
        elif not name.startswith("."):
          ignored.append(rel)
  elif os.path.isfile(path) and _is_tar(path):
    # Read in archive order (seeking back in a .tar.gz re-decompresses from the start).
    try:
      with tarfile.open(path, "r:*") as tar:
        for m in tar:
          if m.isdir() and _parse(m.name.rstrip("/") + "/x.png"):
            folders.add(os.path.normpath(m.name))
          elif m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES) and _parse(m.name):
            blob = tar.extractfile(m).read()
            found.append((*_parse(m.name), m.name, lambda blob=blob: blob))
          elif m.isfile() and not os.path.basename(m.name).startswith("."):
            ignored.append(m.name)
    except (EOFError, tarfile.TarError, zlib.error, OSError) as err:
      why = str(err) or type(err).__name__
      raise UserError(f"data_dir: {path!r} is a damaged or truncated archive ({why}); "
                      "download or build it again") from None
  else:
    raise UserError(f"data_dir: {path!r} is neither a directory nor a .tar/.tar.gz archive "
                    "of <split>/<class>/<image> files")
  used = {os.path.normpath(os.path.dirname(name)) for *_, name, _ in found}
  empty = sorted(folders - used)
  if ignored:
    logging.warning("data_dir %s: %d file(s) are not images at <split>/<class>/<image> and are "
                    "ignored: %s", path, len(ignored), ", ".join(sorted(ignored)[:5])
                    + (", ..." if len(ignored) > 5 else ""))
  if empty:
    logging.warning("data_dir %s: class folder(s) without images (a class with no image in "
                    "any split is not a class): %s", path,
                    ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else ""))
  return sorted(found, key=lambda entry: entry[2])


def _read_file(full: str) -> bytes:
  with open(full, "rb") as f:
    return f.read()


def _is_tar(path: str) -> bool:
  try:
    return tarfile.is_tarfile(path)
  except (EOFError, zlib.error, OSError):
    return True  # a damaged archive: reading it says what is wrong


def _parse(rel: str):
  """'x/train/cat/1.jpg' -> ('train', 'cat'), 'x/val/cat/1.jpg' -> ('val', 'cat'); None
  when there is no split/class level."""
  parts = rel.replace("\\", "/").split("/")
  for i, part in enumerate(parts[:-2]):
    if part in _SPLIT_FOLDERS and len(parts) - i == 3:
      return part, parts[i + 1]
  return None


def source_hash(path: str, class_order) -> str:
  """sha256 of the source's bytes (an archive) or of every image file's path and bytes."""
  h = hashlib.sha256(f"v{CACHE_VERSION}|{class_order}|".encode())
  if os.path.isdir(path):
    for _, _, rel, read in _entries(path):
      h.update(rel.encode())
      h.update(hashlib.sha256(read()).digest())
  else:
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
  return h.hexdigest()


def test_folder(folders) -> str | None:
  """The test split's folder among `folders` (split folder names found): TEST_FOLDERS'
  first present."""
  return next((s for s in TEST_FOLDERS if s in folders), None)


def decode_folder(path: str, class_order=None, name: str = "") -> Dataset:
  """Decodes every image (no cache)."""
  images = {s: [] for s in SPLITS}
  classes = {s: [] for s in SPLITS}
  shape = None
  entries = _entries(path)
  test_name = test_folder({split for split, *_ in entries})
  unused = sorted({split for split, *_ in entries} - {"train", test_name})
  if unused:
    logging.warning("data_dir %s: %s/ is the test split; %s/ is ignored", path, test_name,
                    "/, ".join(unused))
  entries = [("test" if split == test_name else split, *rest)
             for split, *rest in entries if split in ("train", test_name)]
  logging.info("decoding the %d images of %s (once: the arrays are cached)", len(entries),
               path)
  start = last = time.perf_counter()
  for done, (split, cls, rel, read) in enumerate(entries, 1):
    if time.perf_counter() - last > 5:
      last = time.perf_counter()
      logging.info("decoded %d of %d images (%.0f s)", done, len(entries), last - start)
    array = decode(read(), rel)
    if shape is None:
      shape = array.shape
    elif array.shape != shape:
      raise UserError(f"data_dir: image {rel!r} has shape {array.shape}, the others "
                      f"{shape}; all images must have one size")
    images[split].append(array)
    classes[split].append(cls)
  missing = [s for s in SPLITS if not images[s]]
  if missing:
    raise UserError(f"data_dir: {path!r} has no images under {'/'.join(missing)}/<class>/; "
                    "expected <root>/train/<class>/<image> and <root>/test/<class>/<image> "
                    f"(or {' or '.join(TEST_FOLDERS[1:])}/ for test/)")
  order = class_list(sorted(set(classes["train"]) | set(classes["test"])), class_order, path)
  index = {c: i for i, c in enumerate(order)}
  arrays = {s: (np.stack(images[s]), np.asarray([index[c] for c in classes[s]], np.int32))
            for s in SPLITS}
  return Dataset(name or _name(path), *arrays["train"], *arrays["test"], num_classes=len(order))


def class_list(names, class_order=None, path: str = "") -> list[str]:
  """The classes in label order: `class_order` (a CLASS_ORDERS name, 'a,b,c' or a sequence)
  or, when empty, `names` sorted."""
  if isinstance(class_order, str) and class_order not in CLASS_ORDERS and "," in class_order:
    class_order = tuple(c.strip() for c in class_order.split(","))
  order = list(CLASS_ORDERS.get(class_order, class_order) or sorted(names)) if isinstance(
      class_order, str) or class_order is None else list(class_order)
  unknown = sorted(set(names) - set(order))
  if unknown:
    raise UserError(f"class_order: classes {', '.join(unknown)} of {path or 'the data'!r} are "
                    f"not in the order {', '.join(order)}")
  return order


def _name(path: str) -> str:
  base = os.path.basename(os.path.normpath(path))
  for suffix in (".tar.gz", ".tgz", ".tar"):
    if base.endswith(suffix):
      return base[:-len(suffix)]
  return base


def load_image_folder(path: str, class_order: str | None = None, cache_dir: str | None = None,
                      name: str = "") -> Dataset:
  """The image folder at `path`, from the array cache when the source is unchanged."""
  if not path or not os.path.exists(path):
    raise UserError(f"data_dir: {path!r} does not exist (dataset image_folder needs "
                    "--config.data_dir=<folder or .tar/.tar.gz of split/class/image files>)")
  if class_order and class_order not in CLASS_ORDERS and "," in class_order:
    class_order = tuple(c.strip() for c in class_order.split(","))
  key = source_hash(path, class_order)
  cache_dir = cache_dir or default_cache_dir()
  cache = os.path.join(cache_dir, f"{name or _name(path)}-{key[:24]}.npz")
  if os.path.exists(cache):
    try:
      with np.load(cache) as f:
        return Dataset(str(f["name"]), f["train_images"], f["train_labels"], f["test_images"],
                       f["test_labels"], num_classes=int(f["num_classes"]))
    except Exception as err:  # noqa: BLE001 -- any unreadable cache file is rebuilt
      logging.warning("array cache %s is unreadable (%s); rebuilding it", cache, err)
  ds = decode_folder(path, class_order, name)
  try:
    os.makedirs(cache_dir, exist_ok=True)
    # A unique temporary name: two processes filling one cache each write their own file.
    with atomic_files.atomic_path(cache, suffix=".npz") as tmp:
      np.savez(tmp, name=ds.name, train_images=ds.train_images, train_labels=ds.train_labels,
               test_images=ds.test_images, test_labels=ds.test_labels,
               num_classes=ds.num_classes)
  except OSError as err:  # the data is decoded: train without the cache rather than stop
    logging.warning("cannot write the array cache %s (%s); the next run decodes the images "
                    "again", cache, err.strerror or err)
  return ds
