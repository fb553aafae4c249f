import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rethinking_jax.base.errors import UserError
from rethinking_jax.data import randomize as rz

N = 4000


def labels_for(seed, p, n=N, num_classes=10):
  true = jnp.asarray(np.arange(n) % num_classes, jnp.int32)
  return true, rz.corrupt_labels(rz.stream(jax.random.key(seed), "labels"), true,
                                 jnp.arange(n), p, num_classes)


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_corrupted_fraction_is_0_9_p_within_binomial_tolerance(p):
  true, noisy = labels_for(0, p)
  changed = float(jnp.mean(noisy != true))
  expected = 0.9 * p
  tol = 4 * np.sqrt(max(expected * (1 - expected), 1e-12) / N)
  if p == 0:
    assert changed == 0.0
  else:
    assert abs(changed - expected) < tol


def test_corruption_is_deterministic_per_index_and_differs_across_seeds():
  _, a = labels_for(0, 1.0)
  _, b = labels_for(0, 1.0)
  _, c = labels_for(1, 1.0)
  np.testing.assert_array_equal(a, b)
  assert float(jnp.mean(a != c)) > 0.8
  # A function of the index, not of the position in a batch: a shuffled batch agrees.
  key = rz.stream(jax.random.key(0), "labels")
  idx = jnp.asarray(np.random.default_rng(0).permutation(N)[:100])
  true = jnp.asarray(np.arange(N) % 10, jnp.int32)
  sub = rz.corrupt_labels(key, true[idx], idx, 1.0, 10)
  np.testing.assert_array_equal(sub, a[idx])


def images(n=6, h=4, w=5, c=3, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=(n, h, w, c)), jnp.float32)


def apply(kind, x, index, split="train", seed=0, mean=0.5, std=0.25):
  return rz.randomize_inputs(x, index, rz.KIND_CODE[kind], jax.random.key(seed), split,
                             jnp.full((x.shape[-1],), mean), jnp.full((x.shape[-1],), std))


def test_true_and_label_kinds_leave_inputs_alone():
  x = images()
  for kind in rz.LABEL_KINDS:
    np.testing.assert_array_equal(apply(kind, x, jnp.arange(6)), x)


def test_shuffled_pixels_one_channel_consistent_permutation_on_train_and_test():
  x = images()
  train = np.asarray(apply("shuffled_pixels", x, jnp.arange(6), "train"))
  test = np.asarray(apply("shuffled_pixels", x, jnp.arange(100, 106), "test"))
  np.testing.assert_array_equal(train, test)  # same images -> same output on both splits
  flat_x = np.asarray(x).reshape(6, 20, 3)
  flat_t = train.reshape(6, 20, 3)
  # Recover the permutation from image 0 (values are distinct) and check it for all images.
  perm = [int(np.flatnonzero((flat_x[0] == flat_t[0, j]).all(-1))[0]) for j in range(20)]
  assert sorted(perm) == list(range(20)) and perm != list(range(20))
  np.testing.assert_array_equal(flat_t, flat_x[:, perm, :])
  other = np.asarray(apply("shuffled_pixels", x, jnp.arange(6), seed=1))
  assert not np.array_equal(other, train)


def test_random_pixels_are_per_image_permutations():
  x = jnp.tile(images(1), (8, 1, 1, 1))  # the same image 8 times
  out = np.asarray(apply("random_pixels", x, jnp.arange(8)))
  flat_x = np.asarray(x[0]).reshape(20, 3)
  perms = set()
  for img in out.reshape(8, 20, 3):
    perm = tuple(int(np.flatnonzero((flat_x == px).all(-1))[0]) for px in img)
    assert sorted(perm) == list(range(20))  # a true permutation, channels together
    perms.add(perm)
  assert len(perms) == 8
  again = np.asarray(apply("random_pixels", x, jnp.arange(8)))
  np.testing.assert_array_equal(out, again)  # fixed for (seed, index)
  test = np.asarray(apply("random_pixels", x, jnp.arange(8), split="test"))
  assert not np.array_equal(out, test)  # test images are permuted too, differently


def test_gaussian_matches_channel_statistics_and_is_fixed():
  x = jnp.zeros((500, 8, 8, 3))
  mean = jnp.asarray([0.1, 0.5, 0.9])
  std = jnp.asarray([0.05, 0.2, 0.3])
  out = rz.randomize_inputs(x, jnp.arange(500), rz.KIND_CODE["gaussian"], jax.random.key(0),
                            "train", mean, std)
  np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), mean, atol=0.01)
  np.testing.assert_allclose(out.std(axis=(0, 1, 2)), std, rtol=0.03)
  again = rz.randomize_inputs(x[:5] + 1, jnp.arange(5), rz.KIND_CODE["gaussian"],
                              jax.random.key(0), "train", mean, std)
  np.testing.assert_array_equal(again, out[:5])  # independent of the image and the batch


def test_kind_works_as_a_traced_member_value_under_vmap():
  x = images()
  kinds = jnp.asarray([rz.KIND_CODE[k] for k in rz.KINDS])
  keys = jax.vmap(jax.random.key)(jnp.arange(len(kinds)))
  out = jax.vmap(lambda k, key: rz.randomize_inputs(x, jnp.arange(6), k, key, "train",
                                                    jnp.zeros(3), jnp.ones(3)))(kinds, keys)
  for m, kind in enumerate(rz.KINDS):
    single = apply(kind, x, jnp.arange(6), seed=m, mean=0.0, std=1.0)
    np.testing.assert_allclose(out[m], single, atol=1e-6)


def test_parse():
  assert rz.parse("corrupt_labels:0.4") == rz.Randomization("corrupt_labels", 0.4)
  assert rz.parse("random_labels").label_p == 1.0
  assert rz.parse("gaussian").label_p == 0.0
  assert rz.parse("corrupt_labels:0.5").label == "corrupt_labels(p=0.5)"
  with pytest.raises(UserError, match="randomizations: unknown value 'noise'.*gaussian"):
    rz.parse("noise")
  with pytest.raises(UserError, match=r"outside \[0, 1\]"):
    rz.parse("corrupt_labels:1.5")
  with pytest.raises(UserError, match="needs a probability"):
    rz.parse("corrupt_labels")


class _Probe(nn.Module):
  """A linear model that hands every training batch it sees to the host, in order."""

  record: object  # called with each batch

  @nn.compact
  def __call__(self, x, train: bool = False):
    if train:
      jax.debug.callback(lambda v: self.record(np.asarray(v)), x, ordered=True)
    return nn.Dense(10)(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize("kind", ["shuffled_pixels", "random_pixels", "gaussian"])
def test_training_sees_the_same_randomized_inputs_in_every_epoch(kind, monkeypatch):
  """Through the real training step: the multiset of inputs of epoch 1 equals epoch 0's (a
  randomization drawn once per example), and differs from the unrandomized inputs."""
  from helpers import fit, tiny_config

  from rethinking_jax import models

  seen = []
  monkeypatch.setattr(models, "from_config",
                      lambda config, num_classes, *conv_form: _Probe(seen.append))

  def epochs_of_inputs(randomization):
    seen.clear()
    fit(tiny_config(randomizations=randomization, member_strategy="sequential",
                    num_epochs=2, eval_every_epochs=2))
    rows = np.concatenate(seen).reshape(2, -1, int(np.prod(seen[0].shape[1:])))
    return [np.asarray(sorted(map(tuple, epoch))) for epoch in rows]  # order-free

  first, second = epochs_of_inputs(kind)
  assert len(first) == 64  # every example once per epoch (64 = 4 steps x 16)
  np.testing.assert_array_equal(first, second)
  plain, _ = epochs_of_inputs("true_labels")
  assert not np.allclose(first, plain)
