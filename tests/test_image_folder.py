"""Image folders (directory, .tar, .tar.gz; JPEG and PNG) and their array cache."""

import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from rethinking_jax import data
from rethinking_jax.base.errors import UserError
from rethinking_jax.data import image_folder


def make_folder(root, fmt="PNG", classes=("cat", "dog", "ant"), size=(6, 5)):
  """train has every class, test lacks 'ant'; pixel values encode (split, class, index)."""
  rng = np.random.default_rng(0)
  expected = {}
  for split, names in (("train", classes), ("test", classes[:2])):
    for cls in names:
      os.makedirs(root / split / cls)
      for i in range(3):
        pixels = rng.integers(0, 256, size=(*size[::-1], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / split / cls / f"{i}.{fmt.lower()}", fmt)
        expected[(split, cls, i)] = pixels
  return expected


def archive(root, path, mode):
  with tarfile.open(path, mode) as tar:
    tar.add(root, arcname="mydata")
  return path


@pytest.mark.parametrize("kind", ["dir", "tar", "tar.gz"])
def test_directory_and_archives_give_the_same_arrays(tmp_path, kind):
  expected = make_folder(tmp_path / "src")
  path = {"dir": tmp_path / "src", "tar": None, "tar.gz": None}[kind]
  if kind != "dir":
    path = archive(tmp_path / "src", tmp_path / f"d.{kind}", "w" if kind == "tar" else "w:gz")
  ds = data.load("image_folder", data_dir=str(path), cache_dir=str(tmp_path / "cache"))
  assert ds.train_images.shape == (9, 5, 6, 3) and ds.test_images.shape == (6, 5, 6, 3)
  assert ds.num_classes == 3  # classes sorted by name: ant, cat, dog
  assert ds.train_labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
  assert ds.test_labels.tolist() == [1, 1, 1, 2, 2, 2]  # 'ant' missing in test: same index
  np.testing.assert_array_equal(ds.train_images[3], expected[("train", "cat", 0)])  # PNG
  np.testing.assert_array_equal(ds.test_images[5], expected[("test", "dog", 2)])


def test_jpeg_and_a_given_class_order(tmp_path):
  make_folder(tmp_path / "src", fmt="JPEG")
  ds = image_folder.decode_folder(str(tmp_path / "src"), "dog,cat,ant".split(","))
  assert ds.train_labels.tolist() == [2, 2, 2, 1, 1, 1, 0, 0, 0]
  assert ds.train_images.dtype == np.uint8
  with pytest.raises(UserError, match="classes ant of .* are not in the order cifar10|"
                                      "not in the order airplane"):
    image_folder.decode_folder(str(tmp_path / "src"), "cifar10")


def test_unreadable_image_names_the_file(tmp_path):
  make_folder(tmp_path / "src")
  (tmp_path / "src" / "train" / "cat" / "broken.png").write_bytes(b"not a png")
  with pytest.raises(UserError, match=r"cannot read image 'train/cat/broken.png'"):
    image_folder.decode_folder(str(tmp_path / "src"))


def test_cache_is_reused_invalidated_and_rebuilt(tmp_path, monkeypatch):
  make_folder(tmp_path / "src")
  path = archive(tmp_path / "src", tmp_path / "d.tar", "w")
  cache = tmp_path / "cache"
  first = data.load("image_folder", data_dir=str(path), cache_dir=str(cache))
  files = list(cache.iterdir())
  assert len(files) == 1
  calls = []
  real_decode = image_folder.decode_folder
  monkeypatch.setattr(image_folder, "decode_folder",
                      lambda *a, **k: calls.append(1) or real_decode(*a, **k))
  again = data.load("image_folder", data_dir=str(path), cache_dir=str(cache))
  assert not calls  # reused
  np.testing.assert_array_equal(again.train_images, first.train_images)
  # A corrupt cache file is rebuilt, with the same arrays.
  files[0].write_bytes(b"garbage")
  rebuilt = data.load("image_folder", data_dir=str(path), cache_dir=str(cache))
  assert calls
  np.testing.assert_array_equal(rebuilt.test_images, first.test_images)
  calls.clear()
  data.load("image_folder", data_dir=str(path), cache_dir=str(cache))
  assert not calls  # the rebuilt file is used again
  # A changed source (one more image) gets a new key.
  Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(tmp_path / "src/test/cat/9.png")
  archive(tmp_path / "src", path, "w")
  changed = data.load("image_folder", data_dir=str(path), cache_dir=str(cache))
  assert calls and changed.test_images.shape[0] == 7 and len(list(cache.iterdir())) == 2
  # A truncated source is a changed source too.
  before = image_folder.source_hash(str(path), None)
  path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
  assert image_folder.source_hash(str(path), None) != before


def test_missing_path_and_layout_errors(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    data.load("image_folder", data_dir=str(tmp_path / "nope"))
  (tmp_path / "flat").mkdir()
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "flat" / "a.png")
  with pytest.raises(UserError, match="no images under train/test"):
    image_folder.decode_folder(str(tmp_path / "flat"))
