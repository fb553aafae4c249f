"""Host reading throughput of the streaming input path: decode + resize, images per second.

    python benchmarks/stream_reader.py --data_dir=DIR --image_size=342 --workers=1,2,4 \
        --json=benchmarks/stream_reader.json
    python benchmarks/stream_reader.py --synthetic=500x375 --image_size=342   # ImageNet-sized
    ... --readers=threads,processes   # both reader kinds (data/stream.py stream_reader)

On a streamed run the device waits whenever the host reads slower than the device trains, so
this says how many `stream_workers` (and CPU cores) a run needs. `--data_dir`: an image-folder
directory (`train/<class>/<image>`); `--synthetic=WxH`: that many random JPEGs of that size
written to a temporary folder first (ImageNet's typical image is about 500x375).
`StreamedDataset.read_batches` (what the engine reads) yields the same `--batches` batches of
random training indices for each reader kind; the first `--warmup` batches (worker start-up:
`warmup_seconds`) are left out, the rest timed end to end. `processes` are grain's workers
(before 2026-12-04 a hand-written process pool; `git show eb24335:benchmarks/stream_reader.py`
measured the two side by side).
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

import host  # noqa: E402
from record import write_result  # noqa: E402

from rethinking_jax.data import stream  # noqa: E402


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


def bench(data_dir: str, image_size: int, workers: int, batch_size: int, batches: int,
          reader: str = "threads", warmup: int = 4):
  ds = stream.open_stream("image_folder", data_dir=data_dir, image_size=image_size,
                          workers=workers, reader=reader)
  batch_size = min(batch_size, ds.num_train)
  rng = np.random.default_rng(0)
  index = np.concatenate([rng.choice(ds.num_train, batch_size, replace=False)
                          for _ in range(batches + warmup)])
  source = ds.read_batches("train", np.split(index, batches + warmup))
  start = time.perf_counter()
  for _ in range(warmup):  # worker start-up (grain's workers import this script's modules)
    images, _ = next(source)
  startup = time.perf_counter() - start
  start = time.perf_counter()
  for _ in source:
    pass
  seconds = (time.perf_counter() - start) / batches
  ds.close()
  return {"reader": reader, "workers": workers, "image_size": image_size,
          "batch_size": batch_size, "batches_timed": batches, "warmup_seconds": startup,
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
                 help="threads and/or processes")
  p.add_argument("--batch_size", type=int, default=128)
  p.add_argument("--batches", type=int, default=10, help="timed batches")
  p.add_argument("--warmup", type=int, default=4, help="batches before the timing starts")
  p.add_argument("--json", default="")
  host.add_flags(p)
  a = p.parse_args(argv)
  setting = host.configure(a.threads, a.pin, a.conv_impl)
  if bool(a.data_dir) == bool(a.synthetic):
    p.error("give exactly one of --data_dir and --synthetic")
  with tempfile.TemporaryDirectory() as tmp:
    data_dir = a.data_dir or synthetic_folder(tmp, a.synthetic, a.synthetic_count)
    rows = []
    for reader in a.readers.split(","):
      for workers in map(int, a.workers.split(",")):
        load_start = host.loadavg()
        row = bench(data_dir, a.image_size, workers, a.batch_size, a.batches, reader,
                    a.warmup)
        row.update(setting, loadavg_start=load_start, loadavg_end=host.loadavg())
        rows.append(row)
        print(f"{'x'.join(map(str, row['source_shape'])):>12s} -> "
              f"{'x'.join(map(str, row['out_shape'])):10s} {reader:9s} workers={workers:<3d} "
              f"{row['images_per_second']:8.0f} images/s  ({row['batch_seconds'] * 1e3:.0f} "
              f"ms per batch of {row['batch_size']})", flush=True)
  return write_result(a.json, "stream_reader", a, rows)


if __name__ == "__main__":
  main()
