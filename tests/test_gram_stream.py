"""Table 3's random-patch Gram matrices summed over filter blocks (theory/gram_stream.py): the
same K as the whole feature map, and a stopped job resumes to the same numbers."""

import os

import numpy as np
import pytest

from rethinking_jax.base.errors import UserError
from rethinking_jax.base.stop_signals import Interrupted
from rethinking_jax.run import train
from rethinking_jax.theory import features, gram_stream, kernels

SOURCE = {"num_filters": 50, "seed": 0}


def _blocks():
  rng = np.random.default_rng(0)
  train_u8 = rng.integers(0, 256, (45, 10, 10, 3), dtype=np.uint8)
  test_u8 = rng.integers(0, 256, (13, 10, 10, 3), dtype=np.uint8)
  return features.PatchFeatureBlocks(train_u8, test_u8, 50, size=3, batch=16,
                                     filter_batch=16), train_u8, test_u8


def _accumulate(blocks, folder, stop=lambda: False, source=SOURCE, block=None):
  return gram_stream.accumulate(block or blocks.block, blocks.num_blocks, 45, 13, np.float64,
                                str(folder), source, stop=stop, tile=16)


def test_the_summed_grams_equal_those_of_the_whole_feature_map(tmp_path):
  blocks, train_u8, test_u8 = _blocks()
  assert blocks.num_blocks == 4  # 50 filters in blocks of 16: three full, one of 2
  grams = _accumulate(blocks, tmp_path)
  f_train, f_test = features.random_patch_features(train_u8, test_u8, 50, size=3, batch=16,
                                                   filter_batch=16)
  f_train, f_test = f_train.astype(np.float64), f_test.astype(np.float64)
  k = f_train @ f_train.T
  lower = np.tril_indices(45)  # the tiles on or below the diagonal: every entry a solve reads
  np.testing.assert_allclose(grams.train[lower], k[lower], rtol=1e-12, atol=1e-9)
  np.testing.assert_allclose(grams.test, f_test @ f_train.T, rtol=1e-12, atol=1e-9)
  assert grams.blocks_done == 4 and os.listdir(tmp_path) == ["blocks_00004"]
  # the solve reads only the lower triangle: the same fit as from the full K
  labels = np.arange(45) % 3
  a = kernels.fit_and_evaluate_grams(lambda: grams.train.copy(), lambda: grams.test, labels,
                                     np.arange(13) % 3, 3, l2=1.0)
  b = kernels.fit_and_evaluate(f_train, labels, f_test, np.arange(13) % 3, 3, "linear", l2=1.0)
  assert a["test_error"] == b["test_error"] and a["train_error"] == b["train_error"]
  np.testing.assert_allclose(a["norm_per_class"], b["norm_per_class"], rtol=1e-9)


def test_a_stopped_job_resumes_from_its_last_block_to_the_same_numbers(tmp_path):
  blocks, _, _ = _blocks()
  whole = _accumulate(blocks, tmp_path / "whole")
  made = []  # the signal arrives while block 2 is made: it is dropped, not half-added

  def block(b, stop):
    made.append(b)
    return blocks.block(b, stop)

  with pytest.raises(Interrupted, match="stopped at filter block 3 of 4; the Gram matrices "
                                        "of the 2 blocks before it are saved"):
    _accumulate(blocks, tmp_path / "job", stop=lambda: len(made) == 3, block=block)
  assert os.listdir(tmp_path / "job") == ["blocks_00002"]
  os.makedirs(tmp_path / "job" / "blocks_00003")  # a save torn by a kill: no state.json
  resumed = _accumulate(blocks, tmp_path / "job", block=block)
  assert made == [0, 1, 2, 2, 3]  # the block stopped in is made again, blocks 0, 1 are not
  np.testing.assert_array_equal(resumed.train, whole.train)
  np.testing.assert_array_equal(resumed.test, whole.test)
  assert os.listdir(tmp_path / "job") == ["blocks_00004"]  # older and torn saves removed
  with pytest.raises(UserError, match="other num_filters .* remove that folder"):
    _accumulate(blocks, tmp_path / "job", source={"num_filters": 64, "seed": 0})
  assert train.Interrupted is Interrupted  # main's exit 3 for a stopped run covers this job
