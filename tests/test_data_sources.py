import io
import pickle
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest

from rethinking_jax import data
from rethinking_jax.base.errors import UserError
from rethinking_jax.data import cifar_archive, tfds_source


def test_digits_split_is_fixed_stratified_and_uint8():
  a, b = data.load("digits"), data.load("digits")
  assert a.train_images.shape == (1437, 8, 8, 1) and a.test_images.shape == (360, 8, 8, 1)
  assert a.train_images.dtype == np.uint8 and a.train_labels.dtype == np.int32
  np.testing.assert_array_equal(a.train_labels, b.train_labels)
  np.testing.assert_array_equal(a.test_images, b.test_images)
  assert a.train_images.max() == 255
  counts = np.bincount(a.test_labels, minlength=10)
  assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class


def test_synthetic_is_deterministic_and_balanced():
  a = data.load("synthetic", synthetic_shape=(6, 6, 2), synthetic_train=100, synthetic_test=20)
  b = data.load("synthetic", synthetic_shape=(6, 6, 2), synthetic_train=100, synthetic_test=20)
  assert a.train_images.shape == (100, 6, 6, 2)
  np.testing.assert_array_equal(a.train_images, b.train_images)
  assert np.bincount(a.train_labels).tolist() == [10] * 10


def test_unknown_dataset_lists_valid_names():
  with pytest.raises(UserError, match="dataset: unknown value 'svhn'.*cifar10.*digits"):
    data.load("svhn")


TFDS_WITHOUT_TF = textwrap.dedent("""
    import sys
    import tensorflow_datasets as tfds
    from rethinking_jax.data import load
    with tfds.testing.mock_data(num_examples=7):
      for name, shape in (("cifar10", (32, 32, 3)), ("mnist", (28, 28, 1))):
        ds = load(name)
        assert ds.train_images.shape == (7, *shape), ds.train_images.shape
        assert ds.train_images.dtype.name == "uint8" and ds.test_labels.dtype.name == "int32"
        assert ds.num_classes == 10
    assert "tensorflow" not in sys.modules
    print("ok")
""")


@pytest.mark.skipif(tfds_source.tensorflow_available(),
                    reason="the tf extra is installed; this checks the TensorFlow-free path")
def test_tfds_data_source_path_under_mock_data_without_tensorflow():
  out = subprocess.run([sys.executable, "-c", TFDS_WITHOUT_TF], capture_output=True,
                       text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip().endswith("ok")


def test_missing_tfds_dataset_says_where_and_how(tmp_path):
  with pytest.raises(UserError) as err:
    data.load("cifar10", data_dir=str(tmp_path))
  msg = str(err.value)
  assert "'cifar10' not found" in msg and str(tmp_path) in msg
  assert "scripts/prepare_data.py cifar10" in msg and "\n" not in msg
  assert not any(tmp_path.rglob("*.array_record*"))  # nothing was downloaded or prepared


def fake_cifar_python(tmp_path, per_batch=3):
  rng = np.random.default_rng(0)
  path = tmp_path / "cifar-10-python.tar.gz"
  expected = []
  with tarfile.open(path, "w:gz") as tar:
    for name in cifar_archive.TRAIN_FILES + cifar_archive.TEST_FILES:
      data_ = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
      labels = rng.integers(0, 10, size=per_batch).tolist()
      expected.append((data_, labels))
      blob = pickle.dumps({b"data": data_, b"labels": labels, b"batch_label": b"x"})
      info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
      info.size = len(blob)
      tar.addfile(info, io.BytesIO(blob))
  return path, expected


def test_cifar_python_archive(tmp_path):
  path, expected = fake_cifar_python(tmp_path)
  ds = data.load("cifar10_archive", data_dir=str(path))
  assert ds.train_images.shape == (15, 32, 32, 3) and ds.test_images.shape == (3, 32, 32, 3)
  first = expected[0][0][0].reshape(3, 32, 32).transpose(1, 2, 0)
  np.testing.assert_array_equal(ds.train_images[0], first)
  assert ds.test_labels.tolist() == expected[-1][1]


def test_cifar_binary_directory(tmp_path):
  rng = np.random.default_rng(1)
  root = tmp_path / "cifar-10-batches-bin"
  root.mkdir()
  for name in cifar_archive.TRAIN_FILES + cifar_archive.TEST_FILES:
    records = rng.integers(0, 256, size=(2, 3073), dtype=np.uint8)
    records[:, 0] %= 10
    (root / f"{name}.bin").write_bytes(records.tobytes())
  ds = data.load("cifar10_archive", data_dir=str(tmp_path))
  assert ds.train_images.shape == (10, 32, 32, 3)
  rec = np.frombuffer((root / "test_batch.bin").read_bytes(), np.uint8).reshape(2, 3073)
  assert ds.test_labels.tolist() == rec[:, 0].tolist()
  np.testing.assert_array_equal(ds.test_images[1], rec[1, 1:].reshape(3, 32, 32).transpose(1, 2, 0))


class Evil:
  def __reduce__(self):
    return (print, ("pwned",))


def test_cifar_python_refuses_arbitrary_objects(tmp_path):
  root = tmp_path / "cifar-10-batches-py"
  root.mkdir()
  for name in cifar_archive.TRAIN_FILES + cifar_archive.TEST_FILES:
    (root / name).write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
  with pytest.raises(UserError, match="cifar10_archive: data_batch_1 is not a CIFAR-10 python "
                     r"batch \(refusing to load builtins.print"):
    data.load("cifar10_archive", data_dir=str(tmp_path))


def test_cifar_archive_bad_path_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    data.load("cifar10_archive", data_dir=str(tmp_path / "nope"))
  with pytest.raises(UserError, match="neither the python"):
    data.load("cifar10_archive", data_dir=str(tmp_path))
