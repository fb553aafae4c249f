"""Image decoding, and a pool of worker processes that decodes batches into shared memory.

Decoding and resizing ImageNet-sized JPEGs costs ~2.5 ms of a core per image; threads share
one interpreter, so Python's own work per image (and Pillow's parts that hold the GIL) caps
them. Processes do not share it. This module sits outside `data/` on purpose: a worker
process imports only it (numpy, Pillow, errors), not the package's JAX-heavy `data/`.

Worker processes come from a `forkserver` (never `fork`: the parent runs JAX's threads),
which preloads this module, so a worker starts in well under a second. A batch is read in
chunks, each worker decoding its chunk straight into one shared-memory array: images never
travel through a pipe, only indices and labels do. The bytes are the threads' bytes, so the
two readers give the same batches.
"""

from __future__ import annotations

import concurrent.futures
import io
import multiprocessing
import os
import pickle
from multiprocessing import shared_memory

import numpy as np

from rethinking_jax.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def decode(blob: bytes, name: str) -> np.ndarray:
  """uint8 [H,W,C] (C = 1 for grayscale) of an encoded image; UserError naming a bad one."""
  from PIL import Image, UnidentifiedImageError

  try:
    with Image.open(io.BytesIO(blob)) as img:
      img.load()
      array = np.asarray(img.convert("L") if img.mode in ("L", "1", "I;16") else
                         img.convert("RGB"), np.uint8)
  except UnidentifiedImageError:
    raise UserError(f"data_dir: cannot read image {name!r} (not an image file PIL can "
                    "identify; allowed: JPEG or PNG)") from None
  except (OSError, ValueError) as err:
    raise UserError(f"data_dir: cannot read image {name!r} ({err})") from None
  return array[..., None] if array.ndim == 2 else array


def fit_square(image: np.ndarray, size: int, channels: int) -> np.ndarray:
  """Shorter side resized to `size` (bilinear, antialiased), then the central size x size.

  `size` 0 keeps the image as it is (the source must then have one fixed size).
  """
  if image.ndim == 2:
    image = image[..., None]
  if image.shape[-1] != channels:  # ImageNet holds a few grayscale and CMYK-decoded images
    image = np.repeat(image[..., :1], channels, axis=-1) if image.shape[-1] == 1 \
        else image[..., :channels]
  height, width = image.shape[:2]
  if not size or (height == size and width == size):
    return image
  from PIL import Image

  scale = size / min(height, width)
  new = (max(size, round(width * scale)), max(size, round(height * scale)))
  squeeze = channels == 1
  pil = Image.fromarray(image[..., 0] if squeeze else image)
  resized = np.asarray(pil.resize(new, Image.BILINEAR, reducing_gap=None), np.uint8)
  top, left = (new[1] - size) // 2, (new[0] - size) // 2
  out = resized[top:top + size, left:left + size]
  return out[..., None] if squeeze else out


class FolderSplit:
  """`<root>/<split>/<class>/<image>` files, decoded on demand (no array cache)."""

  def __init__(self, root: str, split: str, classes: list[str]):
    self.files, self.labels = [], []
    for c, name in enumerate(classes):
      folder = os.path.join(root, split, name)
      if not os.path.isdir(folder):
        continue
      for file in sorted(os.listdir(folder)):
        if file.lower().endswith(IMAGE_SUFFIXES):
          self.files.append(os.path.join(folder, file))
          self.labels.append(c)

  def __len__(self):
    return len(self.files)

  def read(self, i):
    with open(self.files[i], "rb") as f:
      return decode(f.read(), self.files[i]), self.labels[i]


def read_square(split, i: int, size: int, shape: tuple, where: str) -> tuple[np.ndarray, int]:
  """Example `i` of `split` brought to `shape` (fit_square); UserError when it cannot be."""
  image, label = split.read(int(i))
  image = fit_square(image, size, shape[-1])
  if image.shape != shape:
    raise UserError(f"image_size: example {int(i)} of {where} is "
                    f"{'x'.join(map(str, image.shape))}, the others "
                    f"{'x'.join(map(str, shape))}; set image_size to resize every image to "
                    "one square")
  return image, label


_WORKER = {}  # in a worker process: the splits it reads and the output geometry


def _init_worker(splits: bytes, size: int, shape: tuple, name: str):
  """Unpickles the splits here, so that a split that cannot be opened in a worker becomes
  an error of the first read (a failing initializer would only break the pool, unsaid)."""
  _WORKER.update(size=size, shape=shape, name=name, error=None)
  try:
    _WORKER["splits"] = pickle.loads(splits)
  except Exception as err:  # noqa: BLE001 -- reported by _read_into, in one line
    _WORKER["error"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def _read_into(memory: str, rows: int, split: str, index: np.ndarray, offset: int) -> list:
  """Decodes examples `index` of `split` into rows offset.. of the shared batch `memory`."""
  if _WORKER["error"]:
    raise UserError(f"stream_reader: a reader process cannot open {_WORKER['name']} "
                    f"({_WORKER['error']}); use stream_reader=threads")
  shape = _WORKER["shape"]
  block = shared_memory.SharedMemory(name=memory)
  try:
    out = np.ndarray((rows, *shape), np.uint8, buffer=block.buf)
    labels = []
    for j, i in enumerate(index):
      out[offset + j], label = read_square(_WORKER["splits"][split], i, _WORKER["size"], shape,
                                           f"{_WORKER['name']}/{split}")
      labels.append(label)
    del out
    return labels
  finally:
    block.close()


class ProcessReader:
  """Reads batches of `splits` ({name: a picklable Split}) with `workers` processes."""

  def __init__(self, splits: dict, size: int, shape: tuple, workers: int, name: str):
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    self.workers = workers
    self._pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker,
        initargs=(pickle.dumps(splits), size, tuple(shape), name))
    self._shape, self._name = tuple(shape), name

  def read(self, split: str, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [n, *shape] images and int32 [n] labels of `split` at `index`."""
    rows = len(index)
    block = shared_memory.SharedMemory(create=True,
                                       size=max(1, rows * int(np.prod(self._shape))))
    try:
      chunks = [c for c in np.array_split(np.arange(rows), min(rows, 4 * self.workers))
                if len(c)]
      futures = [self._pool.submit(_read_into, block.name, rows, split,
                                   np.asarray(index)[c], int(c[0])) for c in chunks]
      try:
        labels = [label for f in futures for label in f.result()]
      except concurrent.futures.process.BrokenProcessPool as err:
        raise UserError(f"stream_reader: a reader process of {self._name} died ({err}); out "
                        "of memory? use fewer stream_workers or stream_reader=threads") from None
      images = np.ndarray((rows, *self._shape), np.uint8, buffer=block.buf).copy()
    finally:
      block.close()
      block.unlink()
    return images, np.asarray(labels, np.int32)

  def close(self) -> None:
    self._pool.shutdown(wait=False, cancel_futures=True)
