"""Host reading throughput of the streaming input path: decode + resize, images per second.

    python benchmarks/stream_reader.py --data_dir=DIR --image_size=342 --workers=1,2,4 \
        --json=benchmarks/stream_reader.json
    python benchmarks/stream_reader.py --synthetic=500x375 --image_size=342   # ImageNet-sized
    ... --readers=threads,processes,grain  # the two reader kinds of data/stream.py, and grain

On a streamed run the device waits whenever the host reads slower than the device trains, so
this says how many `stream_workers` (and CPU cores) a run needs. `--data_dir`: an image-folder
directory (`train/<class>/<image>`); `--synthetic=WxH`: that many random JPEGs of that size
written to a temporary folder first (ImageNet's typical image is about 500x375).
Each reader yields the same `--batches` batches of random training indices in turn, as the
engine's feeding thread takes them; the first `--warmup` batches (worker start-up) are left
out, the rest timed end to end. `grain`: a `grain.MapDataset` over the same split and decoding
(`decoding.read_square`), batched, with `mp_prefetch` worker processes; `grain_threads`: the
same with reader threads in this process (issue #30 item 4: whether grain could replace the
hand-written reader pool).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from record import write_result  # noqa: E402

from rethinking_jax.data import stream  # noqa: E402
from rethinking_jax.decoding import read_square  # noqa: E402


def synthetic_folder(root: str, size: str, count: int) -> str:
  """`count` random-content JPEGs of `size` (WxH) in root/train/c/ and root/val/c/."""
  from PIL import Image

  width, height = (int(v) for v in size.split("x"))
  rng = np.random.default_rng(0)
  # Smooth content (like photographs), not white noise, which JPEG compresses badly.
  base = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
  for split in ("train", "val"):
    os.makedirs(os.path.join(root, split, "c"), exist_ok=True)
    for i in range(count if split == "train" else 1):
      shifted = np.roll(base, i, axis=1)
      image = Image.fromarray(shifted).resize((width, height), Image.BILINEAR)
      image.save(os.path.join(root, split, "c", f"{i:05d}.JPEG"), quality=90)
  return root


class _ReadSquare:
  """decoding.read_square of one split as a picklable callable (grain's workers unpickle it)."""

  def __init__(self, ds):
    self.split, self.size, self.shape = ds.train, ds.image_size, ds.image_shape

  def __call__(self, i):
    return read_square(self.split, i, self.size, self.shape, "train")


def _stack(pairs):
  return (np.stack([image for image, _ in pairs]),
          np.asarray([label for _, label in pairs], np.int32))


def _grain_batches(ds, index: np.ndarray, batch_size: int, workers: int, processes: bool):
  """The batches of `index` through grain: map (decode), batch; `workers` worker processes
  (`processes`) each reading with one thread, or `workers` threads in this process. One
  batch of read-ahead per reader (grain's default would be 16 threads and 500 elements,
  which would time its prefetch, not its reading)."""
  import grain
  from absl import flags

  if not flags.FLAGS.is_parsed():  # grain reads its absl flags; this script uses argparse
    flags.FLAGS.mark_as_parsed()
  dataset = grain.MapDataset.source(index).map(_ReadSquare(ds)).batch(batch_size,
                                                                       batch_fn=_stack)
  read = grain.ReadOptions(num_threads=1 if processes else workers, prefetch_buffer_size=1)
  dataset = dataset.to_iter_dataset(read)
  if processes:
    dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
  return iter(dataset)


def bench(data_dir: str, image_size: int, workers: int, batch_size: int, batches: int,
          reader: str = "threads", warmup: int = 4):
  own = "threads" if reader.startswith("grain") else reader  # grain: the splits only
  ds = stream.open_stream("image_folder", data_dir=data_dir, image_size=image_size,
                          workers=workers, reader=own)
  batch_size = min(batch_size, ds.num_train)
  rng = np.random.default_rng(0)
  index = np.concatenate([rng.choice(ds.num_train, batch_size, replace=False)
                          for _ in range(batches + warmup)])
  if reader.startswith("grain"):
    source = _grain_batches(ds, index, batch_size, workers, reader == "grain")
  else:
    source = (ds.read_rows("train", index[b * batch_size:(b + 1) * batch_size])
              for b in range(batches + warmup))
  for _ in range(warmup):  # worker start-up (grain's workers import this script's modules)
    images, _ = next(source)
  start = time.perf_counter()
  for _ in source:
    pass
  seconds = (time.perf_counter() - start) / batches
  ds.close()
  return {"reader": reader, "workers": workers, "image_size": image_size,
          "batch_size": batch_size, "batches_timed": batches,
          "source_shape": list(ds.train.read(0)[0].shape), "batch_seconds": seconds,
          "images_per_second": batch_size / seconds, "out_shape": list(images.shape[1:])}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data_dir", default="", help="an image-folder directory")
  p.add_argument("--synthetic", default="", help="WxH: generate JPEGs of this size instead")
  p.add_argument("--synthetic_count", type=int, default=256)
  p.add_argument("--image_size", type=int, default=0, help="resize target (0 = keep)")
  p.add_argument("--workers", default="1,2,4")
  p.add_argument("--readers", default="threads",
                 help="threads, processes, grain (processes), grain_threads")
  p.add_argument("--batch_size", type=int, default=128)
  p.add_argument("--batches", type=int, default=10, help="timed batches")
  p.add_argument("--warmup", type=int, default=4, help="batches before the timing starts")
  p.add_argument("--json", default="")
  a = p.parse_args(argv)
  if bool(a.data_dir) == bool(a.synthetic):
    p.error("give exactly one of --data_dir and --synthetic")
  with tempfile.TemporaryDirectory() as tmp:
    data_dir = a.data_dir or synthetic_folder(tmp, a.synthetic, a.synthetic_count)
    rows = []
    for reader in a.readers.split(","):
      for workers in map(int, a.workers.split(",")):
        row = bench(data_dir, a.image_size, workers, a.batch_size, a.batches, reader,
                    a.warmup)
        rows.append(row)
        print(f"{'x'.join(map(str, row['source_shape'])):>12s} -> "
              f"{'x'.join(map(str, row['out_shape'])):10s} {reader:9s} workers={workers:<3d} "
              f"{row['images_per_second']:8.0f} images/s  ({row['batch_seconds'] * 1e3:.0f} "
              f"ms per batch of {row['batch_size']})", flush=True)
  return write_result(a.json, "stream_reader", a, rows)


if __name__ == "__main__":
  main()
