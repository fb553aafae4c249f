"""Config sections (rethinking_jax/base/sections.py): each field declared once, in its room's
section, and each room handed only its own."""

import collections

import pytest

from rethinking_jax import models
from rethinking_jax.base import sections
from rethinking_jax.configs import default
from rethinking_jax.engine import loop, program
from rethinking_jax.run import base_config


def test_every_field_is_declared_by_exactly_one_section():
  owners = collections.defaultdict(list)
  for section in base_config.all_sections():
    for name in section.fields:
      owners[name].append(section.name)
  assert {name: where for name, where in owners.items() if len(where) > 1} == {}
  assert set(owners) == set(base_config.get_config())


def test_a_room_reads_its_own_section_and_nothing_else():
  config = base_config.get_config()
  config.model, config.num_epochs = "alexnet_small", 7
  assert loop.SECTION.of(config).num_epochs == 7
  assert models.SECTION.of(config).model == "alexnet_small"
  with pytest.raises(AttributeError):
    loop.SECTION.of(config).model  # noqa: B018 -- the model section's field
  with pytest.raises((AttributeError, TypeError)):
    loop.SECTION.of(config).num_epochs = 8  # read only


def test_a_record_written_before_a_field_existed_reads_its_default():
  old_record = {"model": "mlp_1x512", "batch_size": 64}  # a config.json of an older version
  assert program.SECTION.of(old_record).batch_size == 64
  assert program.SECTION.of(old_record).eval_batch_size == 1000
  assert models.SECTION.of(old_record).bn_momentum == models.defaults.BN_MOMENTUM


def test_resume_may_change_names_only_fields_of_its_section():
  with pytest.raises(ValueError, match="resume_may_change names no field of it: typo"):
    sections.Section("s", {"a": 1}, resume_may_change=frozenset({"typo"}))
  assert base_config.resume_may_change() >= {"num_epochs", "conv_impl", "panel"}
  assert not base_config.resume_may_change() & {"model", "batch_size", "seeds", "dataset"}


def test_configs_never_share_a_default():
  """An unset field is a fresh placeholder per config, a mutable default a fresh copy."""
  a, b = base_config.get_config(), base_config.get_config()
  a.learning_rate = 0.5
  a.runs.x = {"model": "mlp_1x512"}
  assert b.learning_rate is None and "x" not in b.runs


def test_the_field_table_lists_each_field_once_under_its_section():
  rows = default.field_table().splitlines()
  assert len(rows) == len(base_config.get_config())
  assert "loop       num_epochs = 100  (may change on resume)" in rows
  assert "members    learning_rate = None" in rows
