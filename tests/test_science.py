"""The scientific properties of a run, each tested directly through the real training path
(assemble.prepare, the compiled step), so that breaking one names what broke: the optimizer's
update, the Gaussian inputs' statistics, per-image whitening, clean test labels, labels fixed
across epochs, the fooling confidence being the target class's, and evaluation on center crops
with the running batch-norm statistics."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import tiny_config
from PIL import Image

from rethinking_jax import models
from rethinking_jax.data import preprocess
from rethinking_jax.engine import assemble, program
from rethinking_jax.fooling import ascent


def _member(tree, m=0):
  return jax.tree.map(lambda x: x[m], tree)


def test_the_update_is_sgd_with_momentum_at_the_logged_rate():
  """After 8 steps with the rate halved every 4, the logged rate is 0.05 / 4; the next step
  moves each parameter by exactly -lr * (0.9 * accumulator + gradient + wd * kernel)."""
  config = tiny_config(lr_decay_every_epochs=1, lr_decay_rate=0.5, weight_decay=1e-3,
                       member_strategy="sequential")
  run = assemble.prepare(config)
  records = []
  result = run.fit(on_eval=records.extend)
  logged = {r["step"]: r["learning_rate"] for r in records}
  assert logged == pytest.approx({4: 0.05 * 0.5, 8: 0.05 * 0.5 ** 2})
  spec, member = run.programs.spec, _member(run.members)
  state = _member(result.state)
  data, labels = run.inputs.data, _member(run.inputs.labels)
  index = jnp.arange(16)
  images, y = data.train_images[index], labels.train[index]
  after = program._sgd_step(spec, state, member, images, y, index, data.mean, data.std)

  x = preprocess.whiten(preprocess.center_crop(preprocess.to_unit(images), spec.crop))

  def data_loss(params):
    logits = spec.model.apply({"params": params}, x, train=True)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

  grads = jax.grad(data_loss)(state.params)
  accumulator = state.opt_state[0].trace
  lr = logged[8]

  def expected(path, p, g, a):
    decay = 1e-3 * p if path[-1].key == "kernel" else 0.0  # biases are not decayed
    return p - lr * (0.9 * a + g + decay)

  want = jax.tree_util.tree_map_with_path(expected, state.params, grads, accumulator)
  for got, ref, before in zip(jax.tree.leaves(after.params), jax.tree.leaves(want),
                              jax.tree.leaves(state.params), strict=True):
    step = np.abs(np.asarray(ref) - np.asarray(before)).max()
    np.testing.assert_allclose(got, ref, atol=1e-4 * step, rtol=0)
  assert int(after.step) == 9


class _Recorder(nn.Module):
  """A linear model that hands every training input batch to the host, in order."""

  record: object

  @nn.compact
  def __call__(self, x, train: bool = False):
    if train:
      jax.debug.callback(lambda v: self.record(np.asarray(v)), x, ordered=True)
    return nn.Dense(10)(x.reshape(x.shape[0], -1))


def _folder_with_channel_statistics(root):
  """PNG images whose channels have clearly different means and spreads."""
  rng = np.random.default_rng(0)
  low, high = np.asarray([0, 120, 200]), np.asarray([60, 250, 230])
  for split, count in (("train", 48), ("test", 8)):
    for cls in ("a", "b"):
      (root / split / cls).mkdir(parents=True)
      for i in range(count // 2):
        pixels = rng.integers(low, high, (8, 8, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(root / split / cls / f"{i}.png")
  train = np.stack([np.asarray(Image.open(p)) for p in sorted((root / "train").rglob("*.png"))])
  return train.reshape(-1, 3) / 255.0


@pytest.mark.parametrize("pipeline", ["device", "stream"])
def test_gaussian_inputs_have_the_datasets_per_channel_mean_and_variance(
    pipeline, tmp_path, monkeypatch):
  """What a Gaussian member trains on, before per-image whitening, has the per-channel mean and
  variance of the training images (computed here from the files, independently)."""
  pixels = _folder_with_channel_statistics(tmp_path / "images")
  seen = []
  monkeypatch.setattr(models, "from_config",
                      lambda config, num_classes, *conv_form: _Recorder(seen.append))
  monkeypatch.setattr(preprocess, "whiten", lambda x: x)  # look before the whitening
  config = tiny_config(dataset="image_folder", data_dir=str(tmp_path / "images"),
                       cache_dir=str(tmp_path / "cache"), randomizations="gaussian",
                       input_pipeline=pipeline, member_strategy="sequential", num_epochs=1,
                       stream_workers=1)
  assemble.prepare(config).fit()
  noise = np.concatenate(seen).reshape(-1, 3)
  n = noise.shape[0]                                   # 3 steps x 16 images x 64 pixels
  mean, std = pixels.mean(0), pixels.std(0)
  np.testing.assert_allclose(noise.mean(0), mean, atol=5 * std.max() / np.sqrt(n))
  np.testing.assert_allclose(noise.std(0), std, rtol=5 * np.sqrt(1 / (2 * n)))


def test_each_image_is_whitened_on_its_own(monkeypatch):
  """Through the real step: every model input has mean 0 and standard deviation 1 by itself,
  and an image's input does not depend on the other images of its batch."""
  seen = []
  monkeypatch.setattr(models, "from_config",
                      lambda config, num_classes, *conv_form: _Recorder(seen.append))
  run = assemble.prepare(tiny_config(member_strategy="sequential", num_epochs=1))
  run.fit()
  batch = seen[0].reshape(16, -1)
  np.testing.assert_allclose(batch.mean(1), 0.0, atol=1e-5)
  np.testing.assert_allclose(batch.std(1), 1.0, atol=1e-4)
  spec, member, data = run.programs.spec, _member(run.members), run.inputs.data

  def inputs(index):
    return np.asarray(program._inputs(spec, data.train_images[index], index, member, "train",
                                      False, data.mean, data.std))

  both = inputs(jnp.asarray([3, 40]))
  np.testing.assert_allclose(both[0], inputs(jnp.asarray([3]))[0], atol=1e-6)
  alone = preprocess.to_unit(data.train_images[3])
  np.testing.assert_allclose(both[0].mean(), 0.0, atol=1e-5)
  assert np.corrcoef(both[0].ravel(), np.asarray(alone).ravel())[0, 1] > 0.999


@pytest.mark.parametrize("corrupt_test_labels", [False, True])
def test_test_labels_stay_clean_unless_configured_otherwise(corrupt_test_labels):
  run = assemble.prepare(tiny_config(randomizations="random_labels,corrupt_labels:0.5",
                                  corrupt_test_labels=corrupt_test_labels,
                                  member_strategy="sequential", synthetic_test=200))
  true = np.asarray(run.dataset.test_labels)
  for m in range(2):
    test = np.asarray(run.inputs.labels.test[m])
    changed = np.mean(test != true)
    if corrupt_test_labels:
      assert changed > 0.25  # random: ~0.9, p = 0.5: ~0.45
    else:
      assert changed == 0.0
    assert np.mean(np.asarray(run.inputs.labels.train[m]) != run.dataset.train_labels) > 0.25


@pytest.mark.parametrize("pipeline,step_loop", [("device", "scan"), ("device", "host"),
                                                ("stream", "host")])
def test_labels_are_the_same_in_every_epoch(pipeline, step_loop, monkeypatch):
  """Through the real step, on both step loops (and the streamed path): the label a random-
  labels member trains on for each example is the same in epochs 1, 2 and 3, and is not the
  true label for most examples."""
  indices, labels = [], []
  inputs, loss = program._inputs, program.cross_entropy

  def recording_inputs(spec, images_u8, index, *args, **kwargs):
    jax.debug.callback(lambda v: indices.append(np.asarray(v)), index, ordered=True)
    return inputs(spec, images_u8, index, *args, **kwargs)

  def recording_loss(logits, y):
    jax.debug.callback(lambda v: labels.append(np.asarray(v)), y, ordered=True)
    return loss(logits, y)

  monkeypatch.setattr(program, "_inputs", recording_inputs)
  monkeypatch.setattr(program, "cross_entropy", recording_loss)
  run = assemble.prepare(tiny_config(randomizations="random_labels", input_pipeline=pipeline,
                                  step_loop=step_loop, member_strategy="sequential",
                                  num_epochs=3, eval_every_epochs=3))
  run.fit()
  train_indices = [i for i in indices if i.shape == (16,)]
  train_labels = [y for y in labels if y.shape == (16,)]
  assert len(train_indices) == len(train_labels) == 12  # 3 epochs x 4 steps
  per_epoch = []
  for epoch in range(3):
    index = np.concatenate(train_indices[4 * epoch:4 * epoch + 4])
    label = np.concatenate(train_labels[4 * epoch:4 * epoch + 4])
    assert sorted(index) == list(range(64))
    per_epoch.append(label[np.argsort(index)])
  assert not np.array_equal(train_indices[0], train_indices[4])  # a fresh order each epoch
  np.testing.assert_array_equal(per_epoch[0], per_epoch[1])
  np.testing.assert_array_equal(per_epoch[0], per_epoch[2])
  true = (run.dataset.read_rows("train", np.arange(64))[1] if pipeline == "stream"
          else run.dataset.train_labels)
  assert np.mean(per_epoch[0] != true) > 0.6


def test_the_fooling_confidence_is_the_target_classs():
  """Gradient ascent reports, per target class k, the probability of k for its image -- not
  the largest probability nor another class's."""
  weights = jax.random.normal(jax.random.key(0), (4 * 4 * 3, 5))

  def logits(x):
    return x.reshape(x.shape[0], -1) @ weights

  mean = np.full((4, 4, 3), 0.5, np.float32)
  images, confidence, _ = ascent.fooling_images(logits, mean, 5, steps=3, lr=0.01)
  probs = np.asarray(jax.nn.softmax(logits(jnp.asarray(images))))
  np.testing.assert_allclose(confidence[-1], probs[np.arange(5), np.arange(5)], rtol=1e-5)
  assert not np.allclose(confidence[-1], probs.max(1))  # 3 small steps: not yet the argmax


def _fitted(**overrides):
  """(spec, one member's arrays, labels, data, its state) after a short real run."""
  run = assemble.prepare(tiny_config(member_strategy="sequential", **overrides))
  result = run.fit()
  return (run.programs.spec, _member(run.members), _member(run.inputs.labels),
          run.inputs.data, _member(result.state))


def _mean_loss(spec, variables, x, y, **apply):
  logits = spec.model.apply(variables, x, **apply)
  logits = logits[0] if isinstance(logits, tuple) else logits  # (logits, updates) if mutable
  return float(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)))


@pytest.mark.parametrize("transform", ["random_crop", "augment"])
def test_evaluation_sees_the_center_crop_of_each_image(transform):
  """Table 1's crop rows measure their 100% training accuracy on center crops: a crop
  member's evaluation (the compiled eval program) equals a forward pass on the center crops
  of the same images, and a pass on random crops would differ."""
  spec, member, labels, data, state = _fitted(synthetic_shape=(12, 12, 3), crop_size=8,
                                              train_transform=transform)
  evaluated = float(program.evaluate(spec, state, member, labels, data).train_loss)
  unit = preprocess.to_unit(data.train_images)
  center = preprocess.whiten(preprocess.center_crop(unit, 8))
  variables = {"params": state.params}
  assert evaluated == pytest.approx(_mean_loss(spec, variables, center, labels.train),
                                    rel=1e-5)
  random = preprocess.whiten(preprocess.random_crop(jax.random.key(1), unit, 8))
  assert abs(_mean_loss(spec, variables, random, labels.train) - evaluated) > 1e-3 * evaluated


def test_evaluation_uses_the_running_batch_norm_statistics():
  """Every convergence step of a batch-norm model is an eval-mode accuracy: after a few steps
  the evaluation equals a forward pass on the stored running statistics, and differs from
  one on the batch's own statistics (train mode)."""
  spec, member, labels, data, state = _fitted(model="inception_small", learning_rate=0.01)
  assert state.batch_stats  # a batch-norm model
  evaluated = float(program.evaluate(spec, state, member, labels, data).train_loss)
  x = preprocess.whiten(preprocess.to_unit(data.train_images))  # 8x8: no crop
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  assert evaluated == pytest.approx(_mean_loss(spec, variables, x, labels.train), rel=1e-5)
  batch_mode = _mean_loss(spec, variables, x, labels.train, train=True,
                          mutable=["batch_stats"])
  assert abs(batch_mode - evaluated) > 1e-3 * evaluated
