"""Image folders: `<root>/<split>/<class>/<image>` as a directory or a .tar / .tar.gz archive.

Decoded with Pillow (JPEG, PNG), classes in a given order, the `cifar10` order, or sorted by
name. Decoding tens of thousands of files is slow, so the result is cached as one uint8 array
file keyed by a hash of the source's content (and of the class order): a later run loads it
in about a second; a changed or truncated source gets a new key; a corrupt cache file is
rebuilt with a warning. This is also how users bring their own datasets.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import numpy as np
from absl import logging

from rethinking_jax.data.dataset import Dataset
from rethinking_jax.errors import UserError

CLASS_ORDERS = {"cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                            "horse", "ship", "truck")}
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CACHE_VERSION = 1


def default_cache_dir() -> str:
  return os.environ.get("RETHINKING_JAX_CACHE",
                        os.path.join(os.path.expanduser("~"), ".cache", "rethinking_jax"))


def _entries(path: str):
  """(split, class, name, read()) for every image of the source, in a stable order."""
  if os.path.isdir(path):
    found = []
    for root, _, names in os.walk(path):
      for name in names:
        if name.lower().endswith(IMAGE_SUFFIXES):
          full = os.path.join(root, name)
          found.append((os.path.relpath(full, path), full))
    for rel, full in sorted(found):
      parsed = _parse(rel)
      if parsed:
        yield (*parsed, rel, lambda full=full: open(full, "rb").read())
  elif os.path.isfile(path) and tarfile.is_tarfile(path):
    # Read in archive order (seeking back in a .tar.gz re-decompresses from the start).
    blobs = {}
    with tarfile.open(path, "r:*") as tar:
      for m in tar:
        if m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES) and _parse(m.name):
          blobs[m.name] = tar.extractfile(m).read()
    for name in sorted(blobs):
      yield (*_parse(name), name, lambda blob=blobs[name]: blob)
  else:
    raise UserError(f"data_dir: {path!r} is neither a directory nor a .tar/.tar.gz archive "
                    "of <split>/<class>/<image> files")


def _parse(rel: str):
  """'x/train/cat/1.jpg' -> ('train', 'cat'); None when there is no split/class level."""
  parts = rel.replace("\\", "/").split("/")
  for i, part in enumerate(parts[:-2]):
    if part in SPLITS and len(parts) - i == 3:
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


def decode(blob: bytes, name: str) -> np.ndarray:
  from PIL import Image, UnidentifiedImageError

  try:
    with Image.open(io.BytesIO(blob)) as img:
      img.load()
      array = np.asarray(img.convert("L") if img.mode in ("L", "1", "I;16") else
                         img.convert("RGB"), np.uint8)
  except (UnidentifiedImageError, OSError, ValueError) as err:
    raise UserError(f"data_dir: cannot read image {name!r} ({err})") from None
  return array[..., None] if array.ndim == 2 else array


def decode_folder(path: str, class_order=None, name: str = "") -> Dataset:
  """Decodes every image (no cache)."""
  images = {s: [] for s in SPLITS}
  classes = {s: [] for s in SPLITS}
  shape = None
  for split, cls, rel, read in _entries(path):
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
                    "expected <root>/train/<class>/<image> and <root>/test/<class>/<image>")
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
  os.makedirs(cache_dir, exist_ok=True)
  tmp = f"{cache}.tmp.npz"
  np.savez(tmp, name=ds.name, train_images=ds.train_images, train_labels=ds.train_labels,
           test_images=ds.test_images, test_labels=ds.test_labels, num_classes=ds.num_classes)
  os.replace(tmp, cache)
  return ds
