"""Prepares a tfds dataset in ArrayRecord format, so training reads it without TensorFlow.

Needs network access and the `tf` extra (tfds generates CIFAR10/MNIST with TensorFlow):

    pip install -e '.[tf]'
    python scripts/prepare_data.py cifar10 --data_dir=$TFDS_DATA_DIR
    python scripts/prepare_data.py mnist
    python scripts/prepare_data.py imagenet2012 --manual_dir=DIR   # Table 2

ImageNet cannot be downloaded by tfds: put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar
(from image-net.org) in DIR first. Preparing it takes hours and ~150 GB; training then streams
it (input_pipeline=stream).

Offline alternative for CIFAR-10: the official archive (cifar-10-python.tar.gz or
cifar-10-binary.tar.gz), used directly with --config.dataset=cifar10_archive
--config.data_dir=PATH.
"""

import argparse
import importlib.util
import os
import sys

SUPPORTED = ("cifar10", "mnist", "imagenet2012")
MANUAL = ("imagenet2012",)  # datasets tfds builds from files the user downloads


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("name", help=f"dataset, one of: {', '.join(SUPPORTED)}")
  parser.add_argument("--data_dir", default=os.environ.get("TFDS_DATA_DIR"),
                      help="where tfds stores datasets (default: $TFDS_DATA_DIR or "
                      "~/tensorflow_datasets)")
  parser.add_argument("--manual_dir", default="",
                      help="imagenet2012: the folder holding ILSVRC2012_img_{train,val}.tar")
  args = parser.parse_args(argv)
  if args.name not in SUPPORTED:
    print(f"name: unknown dataset {args.name!r}; allowed: {', '.join(SUPPORTED)}",
          file=sys.stderr)
    return 2
  if args.name in MANUAL and not os.path.isdir(args.manual_dir):
    print(f"manual_dir: {args.manual_dir!r} is not a directory; {args.name} needs "
          "--manual_dir=DIR holding ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar",
          file=sys.stderr)
    return 2
  if importlib.util.find_spec("tensorflow") is None:
    print("preparing a tfds dataset needs TensorFlow: pip install -e '.[tf]'", file=sys.stderr)
    return 2
  import tensorflow_datasets as tfds

  builder = tfds.builder(args.name, data_dir=args.data_dir, file_format="array_record")
  config = tfds.download.DownloadConfig(manual_dir=args.manual_dir or None)
  builder.download_and_prepare(download_config=config)
  print(f"prepared {args.name} in {builder.data_dir}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
