"""Image decoding: an encoded image to uint8 [H, W, C], brought to one square, a batch at a time.

Decoding and resizing ImageNet-sized JPEGs costs ~2.5 ms of a core per image. The streamed
path runs `BatchReader` on reader threads, or in grain's worker processes
(data/stream.py), which unpickle it there; this module imports only numpy, Pillow and the
errors, so a worker needs nothing JAX-heavy to run it. Both give the same bytes.
"""

from __future__ import annotations

import io
import os

import numpy as np

from rethinking_jax.base.errors import UserError

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


class BatchReader:
  """read_square over a batch of one split's indices, stacked: uint8 [n, *shape] images and
  int32 [n] labels. Picklable (the split pickles as its files or its source's name), so a
  worker process can run it."""

  def __init__(self, split, size: int, shape: tuple, where: str):
    self.split, self.size, self.shape, self.where = split, size, tuple(shape), where

  def __call__(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = np.empty((len(index), *self.shape), np.uint8)
    labels = np.empty(len(index), np.int32)
    for row, i in enumerate(index):
      images[row], labels[row] = read_square(self.split, i, self.size, self.shape, self.where)
    return images, labels
