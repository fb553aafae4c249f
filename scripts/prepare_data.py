"""Prepares a tfds dataset in ArrayRecord format, so training reads it without TensorFlow.

Needs network access and the `tf` extra (tfds generates CIFAR10/MNIST with TensorFlow):

    pip install -e '.[tf]'
    python scripts/prepare_data.py cifar10 --data_dir=$TFDS_DATA_DIR
    python scripts/prepare_data.py mnist

Offline alternative for CIFAR-10: the official archive (cifar-10-python.tar.gz or
cifar-10-binary.tar.gz), used directly with --config.dataset=cifar10_archive
--config.data_dir=PATH.
"""

import argparse
import importlib.util
import os
import sys

SUPPORTED = ("cifar10", "mnist")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("name", help=f"dataset, one of: {', '.join(SUPPORTED)}")
  parser.add_argument("--data_dir", default=os.environ.get("TFDS_DATA_DIR"),
                      help="where tfds stores datasets (default: $TFDS_DATA_DIR or "
                      "~/tensorflow_datasets)")
  args = parser.parse_args(argv)
  if args.name not in SUPPORTED:
    print(f"name: unknown dataset {args.name!r}; allowed: {', '.join(SUPPORTED)}",
          file=sys.stderr)
    return 2
  if importlib.util.find_spec("tensorflow") is None:
    print("preparing a tfds dataset needs TensorFlow: pip install -e '.[tf]'", file=sys.stderr)
    return 2
  import tensorflow_datasets as tfds

  builder = tfds.builder(args.name, data_dir=args.data_dir, file_format="array_record")
  builder.download_and_prepare()
  print(f"prepared {args.name} in {builder.data_dir}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
