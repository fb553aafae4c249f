"""docs/extending.md's recipes (a model, a randomization, a source, a table), each followed
once: what a user writes, registered the way the recipe says, trained end to end."""

import dataclasses
import importlib
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import tiny_config

from rethinking_jax import data, models, studies
from rethinking_jax.base import errors
from rethinking_jax.data import randomize
from rethinking_jax.engine import assemble, loop, program
from rethinking_jax.run import configuration, suite, train


@pytest.fixture
def registries(monkeypatch):
  """Every registry restored after the test (a registration lasts for the process)."""
  monkeypatch.setattr(models, "RECORDS", dict(models.RECORDS))
  monkeypatch.setattr(models, "NAMES", models.NAMES)
  monkeypatch.setattr(randomize, "KINDS", list(randomize.KINDS))
  monkeypatch.setattr(randomize, "KIND_CODE", dict(randomize.KIND_CODE))
  monkeypatch.setattr(randomize, "INPUT_RANDOMIZATIONS", dict(randomize.INPUT_RANDOMIZATIONS))
  monkeypatch.setattr(data.sources, "SOURCES", dict(data.SOURCES))
  monkeypatch.setattr(data.sources, "DATASETS", data.DATASETS)
  monkeypatch.setattr(studies, "STUDIES", dict(studies.STUDIES))


class TinyCNN(nn.Module):
  """The recipe's module: any NHWC input, num_classes, dtype."""

  num_classes: int = 10
  dtype: object = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.relu(nn.Conv(4, (3, 3), dtype=self.dtype)(x))
    return nn.Dense(self.num_classes, dtype=self.dtype)(x.mean(axis=(1, 2)))


def test_adding_a_model(registries, tmp_path):
  models.register(models.ModelRecord("tiny_cnn", TinyCNN, learning_rate=0.05,
                                     convolutional=True, paper=False))
  config = tiny_config(model="tiny_cnn", learning_rate=None, num_epochs=3,
                       randomizations="true_labels,random_labels")
  summary = train.train_and_evaluate(config, str(tmp_path))
  assert summary["run"]["model"] == "tiny_cnn"
  assert summary["run"]["member_strategy"] == "sequential"  # its record: convolutional, CPU
  assert [m["learning_rate"] for m in summary["members"]] == [0.05, 0.05]  # the record's
  assert models.param_count("tiny_cnn", (8, 8, 3)) == 3 * 3 * 3 * 4 + 4 + 4 * 10 + 10
  with pytest.raises(ValueError, match="exists already"):
    models.register(models.ModelRecord("tiny_cnn", TinyCNN, 0.05, True))
  # Its record does not say member_conv: the strategies that change convolutions refuse it.
  with pytest.raises(errors.UserError, match="^member_strategy: hybrid changes how tiny_cnn's "
                     "convolutions run.*allowed for it: auto, vmap, map, unrolled"):
    assemble.prepare(tiny_config(model="tiny_cnn", member_strategy="hybrid"))


def test_adding_an_input_randomization(registries):
  randomize.register_input("inverted_pixels", randomize.InputRandomization(
      stream=20, per_split=False, apply=lambda x, index, key, mean, std: 1.0 - x))
  run = assemble.prepare(tiny_config(randomizations="true_labels,inverted_pixels"))
  member = lambda m: jax.tree.map(lambda x: x[m], run.members)
  index = jnp.arange(8)
  inputs = [program.member_examples(run.programs.spec, member(m),
                                    jax.tree.map(lambda x, m=m: x[m], run.inputs.labels),
                                    run.inputs.data, index)[0] for m in (0, 1)]
  # Per-image whitening of 1 - x is minus the whitening of x.
  np.testing.assert_allclose(inputs[1], -inputs[0], atol=1e-4)
  result = run.fit()
  assert len(result.history) == 2 * 2  # both members trained and evaluated, twice
  with pytest.raises(ValueError, match="stream 20 is taken"):
    randomize.register_input("again", randomize.InputRandomization(20, False, None))


def test_adding_a_source(registries, tmp_path):
  def load_stripes(options: data.LoadOptions) -> data.Dataset:
    """Horizontal (class 0) or vertical (class 1) stripes."""
    rng = np.random.default_rng(options.synthetic_seed)

    def split(n):
      labels = rng.integers(0, 2, n).astype(np.int32)
      stripes = (np.arange(8) % 2 * 255).astype(np.uint8)
      images = np.where(labels[:, None, None, None] == 0, stripes[None, :, None, None],
                        stripes[None, None, :, None])
      return np.broadcast_to(images, (n, 8, 8, 3)).copy(), labels

    return data.Dataset("stripes", *split(64), *split(32), num_classes=2)

  data.register_source("stripes", load_stripes)
  config = tiny_config(dataset="stripes", model="mlp_1x512", num_epochs=5, learning_rate=0.1)
  summary = train.train_and_evaluate(config, str(tmp_path))
  assert summary["run"]["dataset"] == "stripes" and summary["run"]["num_train"] == 64
  assert summary["members"][0]["test_acc"] == 1.0  # stripes are easy


def test_adding_a_paper_table(registries, tmp_path):
  """The recipe: a module rethinking_jax/studies/my_table.py holding a Study (its runs, seed
  range, report section), one registry line; configs/study.py:my_table runs it. Registered
  here as recipe_table, so that a reader who follows docs/extending.md's recipe literally
  (my_table) does not collide with this test."""
  def recipe_table(workdir, runs):
    """One line per run: its model and final train accuracy."""
    return ["## My table", ""] + [
        f"- {name}: {run['summary']['run']['model']} "
        f"{100 * run['summary']['members'][0]['train_acc']:.1f}%" for name, run in runs.items()]

  study = studies.Study(
      name="recipe_table", title="My table", seed_offset=900, section=recipe_table,
      runs=lambda: {"wide": {"model": "mlp_1x512"}, "narrow": {"model": "mlp_1x32"}},
      smoke=dict(synthetic_shape=(8, 8, 3), crop_size=0, num_epochs=3))
  studies.register(study)  # the registry line (STUDIES in studies/__init__.py)
  config = importlib.import_module("rethinking_jax.configs.study").get_config(
      "recipe_table,smoke,seeds=2")
  config.progress = False
  result = suite.run_suite(config, str(tmp_path))
  report = open(result["report"]).read()
  assert report.startswith("# My table") and "## My table" in report
  accs = {name: s["members"][0]["train_acc"] for name, s in result["runs"].items()}
  assert f"- wide: mlp_1x512 {100 * accs['wide']:.1f}%" in report
  assert f"- narrow: mlp_1x32 {100 * accs['narrow']:.1f}%" in report
  assert json.loads((tmp_path / "config.json").read_text())["report"] == "recipe_table"
  assert [m["seed"] for m in result["runs"]["wide"]["members"]] == [900, 901]  # its own range


def test_adding_a_config_field(monkeypatch, tmp_path):
  """The recipe, one file: in the room that reads the field (here the loop's, engine/loop.py),
  a line in its SECTION (the default; its name in resume_may_change if a resumed run may
  change it) and its check in its `check_config`. The flag, the one-line error, the record in
  config.json and a resume that changes it follow from those two edits."""
  section = loop.SECTION  # engine/loop.py: "log_every_points": 1, in SECTION
  monkeypatch.setattr(loop, "SECTION", dataclasses.replace(
      section, fields={**section.fields, "log_every_points": 1},
      resume_may_change=section.resume_may_change | {"log_every_points"}))
  room_check = loop.check_config

  def check_config(c, streamed=False):  # engine/loop.py: its check, handed its section
    room_check(c, streamed)
    errors.require(c.log_every_points >= 1,
                   f"log_every_points: {c.log_every_points} must be >= 1")

  monkeypatch.setattr(loop, "check_config", check_config)
  with pytest.raises(errors.UserError, match="^log_every_points: 0 must be >= 1$"):
    configuration.validate(tiny_config(log_every_points=0))
  train.train_and_evaluate(tiny_config(log_every_points=1, num_epochs=1), str(tmp_path))
  assert json.loads((tmp_path / "config.json").read_text())["log_every_points"] == 1
  summary = train.train_and_evaluate(tiny_config(log_every_points=2, num_epochs=2),
                                     str(tmp_path))  # resumes: the field may change
  assert summary["run"]["epochs"] == 2
