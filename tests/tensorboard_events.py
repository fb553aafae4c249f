"""Reads the scalars of TensorBoard event files without TensorFlow (for the tests)."""

import glob
import os
import struct
from collections import defaultdict


def read_scalars(logdir) -> dict:
  """{tag: {step: value}} of every event file under `logdir` (TFRecord framing: length,
  its CRC, the serialized Event, its CRC)."""
  from tensorboardX.proto import event_pb2

  scalars = defaultdict(dict)
  for path in sorted(glob.glob(os.path.join(str(logdir), "events.out.tfevents.*"))):
    with open(path, "rb") as f:
      data = f.read()
    pos = 0
    while pos + 12 <= len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      for value in event.summary.value:
        scalars[value.tag][event.step] = value.simple_value
  return dict(scalars)
