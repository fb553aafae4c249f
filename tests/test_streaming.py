"""The streaming input path (ImageNet's): equal to the in-memory path, readers, errors."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import DyingSplit, assert_same_conv_step, assert_trees_close, fit, tiny_config
from PIL import Image

from rethinking_jax.base.errors import UserError
from rethinking_jax.data import decoding, image_folder, inputs, stream
from rethinking_jax.data.dataset import subset_indices
from rethinking_jax.engine import assemble, streaming
from rethinking_jax.run import configuration, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("train_loss", "train_acc", "train_top5", "test_loss", "test_acc", "test_top5")


@pytest.mark.parametrize("overrides", [
    dict(),
    dict(randomizations="random_labels", train_transform="augment", crop_size=6,
         dropout_rate=0.3),
])
def test_one_member_streamed_equals_the_device_resident_run(overrides):
  """Same batches, labels, augmentation and dropout: the same numbers up to float rounding
  (XLA may fuse the device path's gather into the preprocessing and round differently)."""
  _, device = fit(tiny_config(input_pipeline="device", **overrides))
  run, streamed = fit(tiny_config(input_pipeline="stream", **overrides))
  assert isinstance(run.programs, streaming.StreamPrograms)
  assert isinstance(run.inputs, streaming.StreamInputs)
  np.testing.assert_allclose([[r[k] for k in KEYS] for r in device.history],
                             [[r[k] for k in KEYS] for r in streamed.history], atol=1e-5)
  assert_trees_close(device.state.params, streamed.state.params, atol=1e-5)


def test_a_streamed_conv_step_equals_the_device_resident_one():
  """Batch-norm Inception, random crops of random pixels: one step (helpers.
  assert_same_conv_step says why one, and what is compared)."""
  overrides = dict(randomizations="random_pixels", model="inception_small", crop_size=6,
                   train_transform="random_crop", synthetic_train=16, num_epochs=1)
  run, device = fit(tiny_config(input_pipeline="device", **overrides))
  _, streamed = fit(tiny_config(input_pipeline="stream", **overrides))
  assert_same_conv_step(run, device, streamed)


def test_members_share_one_stream_and_keep_their_own_labels():
  """Member m>0 trains on member 0's order; its random labels are still its own."""
  run, result = fit(tiny_config(input_pipeline="stream", randomizations="true_labels,random_labels",
                                seeds="3", num_epochs=1))
  order = run.programs.epoch_order(run.dataset.num_train, 0)
  assert order.shape == (4, 16) and len(np.unique(order)) == 64
  np.testing.assert_array_equal(order, run.programs.epoch_order(run.dataset.num_train, 0))
  assert not np.array_equal(order, run.programs.epoch_order(run.dataset.num_train, 1))
  true, random = result.history
  assert true["label"] == "true_labels" and random["label"] == "random_labels"
  assert true["train_acc"] != random["train_acc"]


def test_every_epoch_order_is_computed_on_the_thread_that_launches_the_steps():
  """A multi-process run deadlocks unless every process launches its multi-device programs
  in one order: the epoch order (a program) must not run on the prefetch thread, where it
  would interleave with the steps by timing."""
  import threading

  run = assemble.prepare(tiny_config(input_pipeline="stream", num_epochs=3, eval_every_epochs=3))
  threads = []
  order = run.programs._order

  def recorded(*args):
    threads.append(threading.current_thread())
    return order(*args)

  run.programs._order = recorded
  run.fit()
  assert len(threads) >= 3 and set(threads) == {threading.current_thread()}


def test_train_metrics_on_a_fixed_subset_and_padded_eval_batches():
  index = subset_indices(1000, 100, seed=5)
  assert len(index) == 100 and np.all(np.diff(index) > 0)
  np.testing.assert_array_equal(index, subset_indices(1000, 100, seed=5))
  np.testing.assert_array_equal(subset_indices(50, 0, seed=5), np.arange(50))
  batches = list(streaming.eval_batches(np.arange(10), 4))
  assert [b.tolist() for b, _ in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 9, 9]]
  assert batches[-1][1].tolist() == [True, True, False, False]
  _, result = fit(tiny_config(input_pipeline="stream", eval_train_examples=20,
                              eval_batch_size=7, num_epochs=1))
  assert result.history[0]["train_acc"] * 20 == round(result.history[0]["train_acc"] * 20)


def test_prefetch_keeps_order_and_raises_at_the_failing_item():
  assert list(stream.prefetch(lambda x: x * x, range(7), depth=3)) == [0, 1, 4, 9, 16, 25,
                                                                        36]

  def fails_at_3(x):
    if x == 3:
      raise ValueError("bad item 3")
    return x

  got = []
  with pytest.raises(ValueError, match="bad item 3"):
    for x in stream.prefetch(fails_at_3, range(10), depth=4):
      got.append(x)
  assert got == [0, 1, 2]


def test_fit_square_resizes_the_shorter_side_and_crops_the_center():
  image = np.zeros((40, 80, 3), np.uint8)
  image[:, 30:50] = 255  # a bright band in the middle columns
  out = decoding.fit_square(image, 20, 3)
  assert out.shape == (20, 20, 3) and out.dtype == np.uint8
  assert out[:, 10].min() == 255 and out[:, 0].max() == 0  # the band is centered
  gray = decoding.fit_square(np.full((30, 30), 7, np.uint8), 10, 3)
  assert gray.shape == (10, 10, 3) and np.all(gray == 7)
  same = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
  assert decoding.fit_square(same, 0, 3) is same


def write_jpeg_folder(root, sizes, test_split="val"):
  rng = np.random.default_rng(0)
  for split in ("train", test_split):
    for c, cls in enumerate(("n02", "n01")):
      os.makedirs(root / split / cls)
      for i, (h, w) in enumerate(sizes):
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        pixels[..., 0] = 40 + 160 * c  # class-dependent red channel
        Image.fromarray(pixels).save(root / split / cls / f"{i}.JPEG", quality=95)


def test_an_imagenet_style_folder_of_any_image_sizes_is_streamed(tmp_path):
  """End to end through grain's reader processes (the default for folders). Two workers, not
  the default 8: every epoch's and evaluation's pass spawns its own, each importing the
  package, which cost this test ~4 minutes on 2 cores with 8 (their bytes equal the threads':
  test_process_readers_give_the_threads_bytes)."""
  write_jpeg_folder(tmp_path, [(20, 30), (33, 17), (16, 16)])
  config = tiny_config(dataset="image_folder", data_dir=str(tmp_path), image_size=16,
                       crop_size=12, input_pipeline="stream", batch_size=2,
                       randomizations="true_labels", num_epochs=3, learning_rate=0.1,
                       stream_workers=2)
  run, result = fit(config)
  assert run.dataset.uses_processes
  assert run.dataset.num_train == 6 and run.dataset.num_test == 6
  assert run.dataset.image_shape == (16, 16, 3) and run.dataset.num_classes == 2
  images, labels = run.dataset.read_rows("test", np.arange(6))
  assert images.shape == (6, 16, 16, 3) and labels.tolist() == [0, 0, 0, 1, 1, 1]  # n01, n02
  assert images[:3, ..., 0].mean() > images[3:, ..., 0].mean() + 100  # n01 is the red one
  assert result.history[-1]["test_acc"] == 1.0  # the red channel gives the class away


def test_subsets_are_fixed_random_and_the_same_on_both_input_paths(tmp_path):
  """num_train picks a fixed random subset, not the first N (folders are class-sorted)."""
  write_jpeg_folder(tmp_path, [(16, 16)] * 6, test_split="test")
  device = image_folder.load_image_folder(str(tmp_path), cache_dir=str(tmp_path / "cache"))
  picked = device.subset(num_train=4, num_test=5)
  assert set(picked.train_labels.tolist()) == {0, 1}  # the first 4 would all be class 0
  np.testing.assert_array_equal(picked.train_labels, device.subset(4, 5).train_labels)
  streamed = stream.open_stream("image_folder", data_dir=str(tmp_path)).subset(4, 5)
  images, labels = streamed.read_rows("train", np.arange(4))
  np.testing.assert_array_equal(images, picked.train_images)
  np.testing.assert_array_equal(labels, picked.train_labels)
  assert streamed.num_test == 5


def write_split(root, split, per_class):
  rng = np.random.default_rng(len(split) * 10 + per_class)
  for cls in ("n02", "n01"):
    os.makedirs(root / split / cls)
    for i in range(per_class):
      pixels = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
      Image.fromarray(pixels).save(root / split / cls / f"{i}.JPEG", quality=95)


@pytest.mark.parametrize("test_splits", [("val",), ("validation",), ("val", "test")])
def test_one_folder_layout_rule_for_both_readers(tmp_path, test_splits):
  """train/ and the first of test/, val/, validation/ present: a folder that streams also
  loads into memory, with the same test examples."""
  root = tmp_path / "data"
  write_split(root, "train", 2)
  for i, split in enumerate(test_splits):
    write_split(root, split, 1 + i)  # test/ (when present) has 2 per class, val/ 1
  device = image_folder.load_image_folder(str(root), cache_dir=str(tmp_path / "cache"))
  streamed = stream.open_stream("image_folder", data_dir=str(root))
  assert device.num_test == streamed.num_test == (4 if "test" in test_splits else 2)
  images, labels = streamed.read_rows("test", np.arange(streamed.num_test))
  np.testing.assert_array_equal(images, device.test_images)
  np.testing.assert_array_equal(labels, device.test_labels)


def test_process_readers_give_the_threads_bytes(tmp_path):
  """grain's worker processes (decoding.BatchReader) on a subset with resizing: byte for byte
  what the threads read, in order, batch by batch too; a broken file is the same one-line
  error."""
  write_jpeg_folder(tmp_path, [(20, 30), (33, 17), (16, 16)])
  opened = {r: stream.open_stream("image_folder", data_dir=str(tmp_path), image_size=12,
                                  workers=2, reader=r).subset(num_train=5)
            for r in ("threads", "processes")}
  assert opened["processes"].uses_processes and not opened["threads"].uses_processes
  index = np.asarray([4, 0, 3, 3, 1])
  try:
    for split in ("train", "test"):
      (a_img, a_lab), (b_img, b_lab) = (ds.read_rows(split, index) for ds in opened.values())
      np.testing.assert_array_equal(a_img, b_img)
      np.testing.assert_array_equal(a_lab, b_lab)
      assert b_img.shape == (5, 12, 12, 3)
      batches = [index[:2], index[2:], index[::-1]]
      for (a_img, a_lab), (b_img, b_lab) in zip(
          *(ds.read_batches(split, batches, depth=2) for ds in opened.values()), strict=True):
        np.testing.assert_array_equal(a_img, b_img)
        np.testing.assert_array_equal(a_lab, b_lab)
    subset = opened["threads"].train
    broken = subset.split.files[subset.index[0]]  # the subset's first training image
    open(broken, "wb").write(b"not a jpeg")
    for ds in opened.values():
      with pytest.raises(UserError, match=f"cannot read image '{broken}'"):
        ds.read_rows("train", np.arange(5))
  finally:
    for ds in opened.values():
      ds.close()


def test_a_reader_process_that_dies_is_a_one_line_error():
  ds = stream.StreamedDataset("dying", DyingSplit(), DyingSplit(), 10, 4, 3, workers=2,
                              reader="processes")
  with pytest.raises(UserError, match=r"^stream_reader: a reader process of dying died \("
                                      r".*exit code 3.*\); out of memory\? use fewer "):
    for _ in ds.read_batches("train", [np.arange(i, i + 10) for i in range(0, 100, 10)]):
      pass


def test_auto_reader_uses_processes_for_files_and_threads_for_arrays(tmp_path):
  write_jpeg_folder(tmp_path, [(16, 16)])
  folder = stream.open_stream("image_folder", data_dir=str(tmp_path))
  one = stream.open_stream("image_folder", data_dir=str(tmp_path), workers=1)
  arrays = assemble.prepare(tiny_config(input_pipeline="stream")).dataset
  assert folder.uses_processes and not one.uses_processes and not arrays.uses_processes
  for ds in (folder, one, arrays):
    ds.close()


def test_folder_without_a_test_split_is_a_one_line_error(tmp_path):
  (tmp_path / "train" / "a").mkdir(parents=True)
  config = tiny_config(dataset="image_folder", data_dir=str(tmp_path), input_pipeline="stream")
  with pytest.raises(UserError, match="needs train/<class>/ and one of test, val, validation"):
    assemble.prepare(config)


@pytest.mark.parametrize("overrides, message", [
    (dict(dataset="imagenet2012", input_pipeline="device"),
     "input_pipeline: imagenet2012 does not fit in device memory; allowed: auto, stream"),
    (dict(input_pipeline="disk"), "input_pipeline: unknown value 'disk'; allowed: auto, "
                                  "device, stream"),
    (dict(image_size=64), "image_size: 64 resizes images on the streaming input path only"),
    (dict(model="inception_v3", input_pipeline="stream"),
     "crop_size: inception_v3 needs inputs of at least 75x75, these are 8x8"),
    (dict(model="inception_small", dropout_rate=0.2),
     "dropout_rate: inception_small has no dropout layers; allowed: 0"),
    (dict(eval_train_examples=-1), "eval_train_examples: -1 must be >= 0"),
    (dict(input_pipeline="stream", eval_full_every=5),
     "eval_full_every: 5 needs the device input path"),
    (dict(eval_full_every=0), "eval_full_every: 0 must be an integer >= 1"),
    (dict(input_pipeline="stream", step_loop="scan"),  # was ignored there, silently
     "step_loop: scan puts a chunk of steps in one program over data on the device"),
])
def test_streaming_config_mistakes_are_one_line_errors(overrides, message):
  config = tiny_config(**overrides)
  with pytest.raises(UserError) as err:  # the checks a run makes before it builds anything
    assemble.prepare(config, configuration.validate(config))
  assert message in str(err.value) and "\n" not in str(err.value)


def test_inception_v3_takes_dropout_and_streams_by_default_on_imagenet():
  config = tiny_config(dataset="imagenet2012", model="inception_v3", dropout_rate=0.2)
  configuration.validate(config)
  assert inputs.streams(config)
  assert not inputs.streams(tiny_config())


MOCK_IMAGENET = textwrap.dedent("""
    import json, sys
    import tensorflow_datasets as tfds
    from absl import logging
    sys.path.insert(0, "tests")
    from helpers import tiny_config
    from rethinking_jax.run import train
    logging.set_verbosity(logging.ERROR)
    with tfds.testing.mock_data(num_examples=20):
      config = tiny_config(dataset="imagenet2012", image_size=24, crop_size=20, batch_size=8,
                           eval_batch_size=8, randomizations="true_labels,random_labels",
                           eval_train_examples=10, num_epochs=1)
      summary = train.train_and_evaluate(config, sys.argv[1])
    run = summary["run"]
    assert run["input_pipeline"] == "stream" and run["num_train"] == 20, run
    assert run["train_eval_examples"] == 10 and run["num_test"] == 20, run
    assert "tensorflow" not in sys.modules
    print("ok", json.dumps(summary["members"][0]["test_top5"]))
""")


def test_imagenet2012_streams_through_tfds_data_source_without_tensorflow(tmp_path):
  """Mock ImageNet (random image sizes, 1000 classes) through the real tfds reader."""
  proc = subprocess.run([sys.executable, "-c", MOCK_IMAGENET, str(tmp_path / "run")], cwd=ROOT,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
  assert (tmp_path / "run" / "report.md").exists()


def test_unprepared_imagenet_is_a_one_line_error_with_the_prepare_command(tmp_path):
  config = tiny_config(dataset="imagenet2012", data_dir=str(tmp_path), image_size=96,
                       crop_size=80)
  with pytest.raises(UserError, match="cannot be streamed from .*prepare_data.py imagenet2012"):
    assemble.prepare(config)


def test_streamed_resume_equals_the_uninterrupted_run(tmp_path):
  config = tiny_config(input_pipeline="stream", randomizations="random_labels", num_epochs=2,
                       checkpoint_every_epochs=1)
  straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
  first = tiny_config(input_pipeline="stream", randomizations="random_labels", num_epochs=1,
                      checkpoint_every_epochs=1)
  train.train_and_evaluate(first, str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
  assert straight["members"] == resumed["members"]

  def records(name):
    lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "wall_time"} for line in lines]

  assert records("resumed") == records("straight")


def test_preparing_imagenet_without_its_manual_dir_is_a_one_line_error(tmp_path):
  proc = subprocess.run([sys.executable, "scripts/prepare_data.py", "imagenet2012",
                         f"--manual_dir={tmp_path / 'missing'}"], cwd=ROOT, capture_output=True,
                        text=True, timeout=60)
  assert proc.returncode == 2 and proc.stdout == ""
  assert proc.stderr.count("\n") == 1
  assert "manual_dir: " in proc.stderr and "ILSVRC2012_img_train.tar" in proc.stderr


def test_a_streamed_run_resumes_with_other_reader_threads(tmp_path):
  """How many threads read ahead changes no number, so a resume may change it."""
  first = tiny_config(input_pipeline="stream", num_epochs=1, stream_workers=1,
                      prefetch_batches=1)
  train.train_and_evaluate(first, str(tmp_path))
  more = tiny_config(input_pipeline="stream", num_epochs=2, stream_workers=3,
                     prefetch_batches=5)
  assert train.train_and_evaluate(more, str(tmp_path))["run"]["epochs"] == 2
