"""Linear-kernel Gram matrices summed over blocks of feature columns, saved after each block.

K = F F^T is the sum over column blocks F_b of F_b F_b^T, so a feature map too large to hold
(Table 3 at the paper's scale: 50,000 images x 256,000 features, 51 GB in float32) is made one
block at a time and dropped. K's lower triangle is all that the blocked Cholesky factor and
solves of kernels.py read, so only its tiles on or below the diagonal are summed (half the
products). After each block the partial sums are saved in the checkpoint folder, with what
they were computed from; a job of hours stopped by SIGTERM/SIGINT/SIGHUP resumes from the
last saved block.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable

import numpy as np
from absl import logging

from rethinking_jax.base.errors import UserError
from rethinking_jax.base.stop_signals import Interrupted

_STATE = "state.json"  # written last: a saved folder without it is incomplete


@dataclasses.dataclass
class Grams:
  """K = F F^T of the training features (lower triangle; the upper one is not summed) and
  the test-against-train products T F^T, after `blocks_done` of `num_blocks` blocks."""

  train: np.ndarray
  test: np.ndarray
  blocks_done: int
  num_blocks: int


def add_lower(k: np.ndarray, f: np.ndarray, tile: int = 4096) -> None:
  """k += f f^T on k's tiles on or below the diagonal (tile x tile), in place."""
  n = len(f)
  for i in range(0, n, tile):
    fi = f[i:i + tile]
    for j in range(0, min(i + tile, n), tile):
      k[i:i + tile, j:j + tile] += fi @ f[j:j + tile].T


def _saved(folder: str) -> list[tuple[int, str]]:
  """(blocks done, path) of the complete saves in `folder`, newest last."""
  if not os.path.isdir(folder):
    return []
  found = []
  for name in os.listdir(folder):
    path = os.path.join(folder, name)
    if name.startswith("blocks_") and os.path.isfile(os.path.join(path, _STATE)):
      found.append((int(name.removeprefix("blocks_")), path))
  return sorted(found)


def _save(folder: str, grams: Grams, source: dict) -> None:
  """grams into folder/blocks_NNNNN (its state.json last), then the older saves removed."""
  path = os.path.join(folder, f"blocks_{grams.blocks_done:05d}")
  shutil.rmtree(path, ignore_errors=True)  # an incomplete earlier try at this block
  os.makedirs(path)
  for name in ("train", "test"):
    with open(os.path.join(path, f"{name}.npy"), "wb") as out:
      np.save(out, getattr(grams, name))
      out.flush()
      os.fsync(out.fileno())
  with open(os.path.join(path, _STATE), "w") as out:
    json.dump({"blocks_done": grams.blocks_done, "num_blocks": grams.num_blocks,
               "source": source}, out)
    out.flush()
    os.fsync(out.fileno())
  for _, older in _saved(folder)[:-1]:
    shutil.rmtree(older, ignore_errors=True)
  for name in os.listdir(folder):  # incomplete saves (a stop or a full disk mid-save)
    other = os.path.join(folder, name)
    if other != path and not os.path.isfile(os.path.join(other, _STATE)):
      shutil.rmtree(other, ignore_errors=True)


def load(folder: str, source: dict) -> Grams | None:
  """The newest complete save in `folder`, or None; a save made from another `source` (other
  images, filters or precision) is refused, not mixed in."""
  saves = _saved(folder)
  if not saves:
    return None
  path = saves[-1][1]
  with open(os.path.join(path, _STATE)) as f:
    state = json.load(f)
  if state["source"] != source:
    changed = sorted(k for k in set(source) | set(state["source"])
                     if source.get(k) != state["source"].get(k))
    raise UserError(f"{folder}: its partial Gram matrices were computed with other "
                    f"{', '.join(changed)} ({state['source']}); remove that folder to start "
                    "again, or use another --workdir")
  return Grams(np.load(os.path.join(path, "train.npy")),
               np.load(os.path.join(path, "test.npy")),
               state["blocks_done"], state["num_blocks"])


def train_gram(folder: str) -> np.ndarray:
  """A fresh in-memory copy of the finished K (each factorization consumes one)."""
  return np.load(os.path.join(_saved(folder)[-1][1], "train.npy"))


def accumulate(block: Callable[[int, Callable[[], bool]], tuple | None], num_blocks: int,
               num_train: int, num_test: int, dtype, folder: str, source: dict,
               stop: Callable[[], bool] = lambda: False, tile: int = 4096) -> Grams:
  """The Gram matrices of blocks 0 .. num_blocks-1, resumed from `folder`'s newest save and
  saved there after each block. block(b, stop) -> (train [N, d_b], test [M, d_b]) features,
  or None where stop() turned true while making them. On stop() the job raises Interrupted
  (the blocks saved stay; the block in progress is dropped)."""
  grams = load(folder, source)
  if grams is None:
    grams = Grams(np.zeros((num_train, num_train), dtype), np.zeros((num_test, num_train),
                                                                     dtype), 0, num_blocks)
  elif grams.blocks_done:
    logging.info("resuming the Gram matrices from %s: %d of %d filter blocks done", folder,
                 grams.blocks_done, num_blocks)
  for b in range(grams.blocks_done, num_blocks):
    start = time.perf_counter()
    parts = None if stop() else block(b, stop)
    if parts is None or stop():
      raise Interrupted(f"stopped at filter block {b + 1} of {num_blocks}; the Gram matrices "
                        f"of the {b} blocks before it are saved in {folder} (rerun the same "
                        "command to resume)")
    train, test = (np.asarray(p, dtype) for p in parts)
    add_lower(grams.train, train, tile)
    grams.test += test @ train.T
    grams.blocks_done = b + 1
    _save(folder, grams, source)
    logging.info("filter block %d of %d: %.0f s (saved)", b + 1, num_blocks,
                 time.perf_counter() - start)
  return grams
