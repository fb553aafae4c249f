import importlib
import json

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import tiny_config

from rethinking_jax.fooling import adversarial, ascent, classifier, map_elites
from rethinking_jax.fooling import run as fooling_run
from rethinking_jax.run import train

pytestmark = pytest.mark.xdist_group("fooling_trained")  # the fixture trains once


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("trained")
  config = tiny_config(dataset="digits", randomizations="true_labels,random_labels",
                       batch_size=128, learning_rate=0.1, lr_decay_rate=1.0, num_epochs=40,
                       eval_every_epochs=10, eval_batch_size=500)
  train.train_and_evaluate(config, str(workdir))
  mean, images, labels = classifier.images_of_workdir(str(workdir))
  return str(workdir), classifier.from_workdir(str(workdir), 0), mean, images[:24], labels[:24]


def test_gradient_ascent_raises_the_target_confidence(trained):
  _, clf, mean, _, _ = trained
  start = np.asarray(clf.probs(jnp.asarray(mean)[None]))[0]
  images, confidence, first = ascent.fooling_images(clf.logits, mean, 10, steps=60, seed=3)
  assert images.min() >= 0 and images.max() <= 1
  assert np.all(confidence[-1] > start)
  assert np.median(confidence[-1]) > 0.99 and all(v is not None for v in first[0.99])
  again = ascent.fooling_images(clf.logits, mean, 10, steps=60, seed=3)
  np.testing.assert_array_equal(again[0], images)  # deterministic for a seed


def test_adversarial_noise_flips_and_is_much_smaller_than_a_random_direction(trained):
  _, clf, _, images, _ = trained
  pred = np.asarray(clf.logits(jnp.asarray(images))).argmax(-1)
  delta, ok, norms = adversarial.minimal_perturbation(clf.logits, images, pred, norm="l2",
                                                      bisections=10, steps=30)
  assert ok.mean() == 1.0
  flipped = np.asarray(clf.logits(jnp.asarray(np.clip(images + delta, 0, 1)))).argmax(-1)
  assert np.all(flipped != pred)
  random_norms = adversarial.random_direction_norms(clf.logits, images, pred)
  finite = np.isfinite(random_norms)
  assert finite.mean() > 0.5
  assert np.median(norms[finite]) < 0.5 * np.median(random_norms[finite])
  target = (pred + 3) % 10
  delta, ok, _ = adversarial.minimal_perturbation(clf.logits, images, pred, target, "linf",
                                                  bisections=8, steps=30)
  reached = np.asarray(clf.logits(jnp.asarray(np.clip(images + delta, 0, 1)))).argmax(-1)
  assert np.all(reached[ok] == target[ok]) and ok.mean() > 0.5


@pytest.mark.parametrize("encoding", ["direct", "cppn"])
def test_map_elites_archive_never_gets_worse_and_is_deterministic(trained, encoding):
  _, clf, _, _, _ = trained
  archive, best, history = map_elites.evolve(clf.probs, encoding, clf.input_shape, 10,
                                             generations=25, population=16, seed=1)
  assert history.shape == (25, 10)
  assert np.all(np.diff(history, axis=0) >= 0)  # elites are only ever replaced by better
  assert history[-1].mean() > history[0].mean() or history[0].min() > 0.99
  probs = np.asarray(clf.probs(jnp.asarray(best)))
  np.testing.assert_allclose(probs[np.arange(10), np.arange(10)], archive.fitness, rtol=1e-4)
  again = map_elites.evolve(clf.probs, encoding, clf.input_shape, 10, generations=25,
                            population=16, seed=1)
  np.testing.assert_array_equal(again[2], history)


def test_fooling_config_compares_members(trained, tmp_path):
  workdir = trained[0]
  config = importlib.import_module("rethinking_jax.configs.fooling").get_config("smoke")
  config.fooling_workdir = workdir
  config.encodings = "direct"
  config.generations = 5
  summary = fooling_run.run(config, str(tmp_path))
  assert [m["label"] for m in summary["members"]] == ["true_labels", "random_labels"]
  report = (tmp_path / "report.md").read_text()
  assert "| true_labels |" in report and "| random_labels |" in report
  assert json.loads((tmp_path / "summary.json").read_text())["num_attack_images"] == 16
  assert json.loads((tmp_path / "config.json").read_text())["fooling_workdir"] == workdir
  # A fixed random sample of the test set, not its first images (a class-sorted folder
  # would give one class): the same for every member and every rerun.
  attacked = summary["attacked_test_images"]
  assert attacked == sorted(set(attacked)) and len(attacked) == 16
  assert attacked != list(range(16)) and max(attacked) >= 100
  for name in ("adversarial_member0.png", "ascent_member1.png", "map_elites_direct_member1.png"):
    assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_fooling_puts_members_of_several_runs_side_by_side(trained, tmp_path):
  """`fooling_workdir=A,B` attacks A's members then B's on the same images, one row each."""
  workdir = trained[0]
  config = importlib.import_module("rethinking_jax.configs.fooling").get_config("smoke")
  config.fooling_workdir = f"{workdir},{workdir}"
  config.fooling_members = "1"
  config.encodings = "direct"
  config.generations = 2
  config.ascent_steps = 5
  summary = fooling_run.run(config, str(tmp_path / "out"))
  rows = summary["members"]
  assert [(m["member"], m["tag"], m["label"]) for m in rows] == [
      (1, "member0", "random_labels"), (1, "member1", "random_labels")]
  assert rows[0]["untargeted_l2"] == rows[1]["untargeted_l2"]  # same member, same images
  report = (tmp_path / "out" / "report.md").read_text()
  assert f"Source runs: `{workdir}`, `{workdir}`" in report and "| `member1` |" in report


def test_fooling_refuses_runs_of_other_images_and_members_out_of_range(trained, tmp_path):
  import shutil

  from rethinking_jax.base.errors import UserError
  workdir = trained[0]
  other = tmp_path / "other"
  shutil.copytree(workdir, other)
  saved = json.loads((other / "config.json").read_text())
  saved["crop_size"] = 6  # other attacked images: 6x6 crops
  (other / "config.json").write_text(json.dumps(saved))
  config = importlib.import_module("rethinking_jax.configs.fooling").get_config("smoke")
  config.fooling_workdir = f"{workdir},{other}"
  with pytest.raises(UserError, match="fooling_workdir: .*other test images"):
    fooling_run.run(config, str(tmp_path / "out"))
  config.fooling_workdir = workdir
  config.fooling_members = "2"
  with pytest.raises(UserError, match=r"fooling_members: member 2 .*allowed: 0 to 1"):
    fooling_run.run(config, str(tmp_path / "out"))
  config.fooling_members = "first"
  with pytest.raises(UserError, match="fooling_members: 'first'; allowed: comma-separated"):
    fooling_run.run(config, str(tmp_path / "out"))
