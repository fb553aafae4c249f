"""A run assembled from a checked config (configuration.validate, or a trained workdir's):
its members, data (on the device or streamed), compiled programs and loop settings --
everything `train` needs to fit it, nothing written.

prepare(config) is the one place where a config becomes a runnable Run; check(config) raises
what prepare would, without building anything (a suite checks all its runs first). Neither
checks the config's fields (the rooms' check_config do, called by configuration.validate);
both check what needs the data: the batch and the crop against the dataset, the strategy
against the platform and the memory.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import numpy as np

from rethinking_jax import data, models
from rethinking_jax.base.errors import require
from rethinking_jax.data import inputs as data_inputs
from rethinking_jax.data import preprocess, stream
from rethinking_jax.engine import loop, memory, program, sharding, strategies, xla_cpu
from rethinking_jax.engine import members as members_lib
from rethinking_jax.engine.strategies import (
  CompiledMembers,
  MemberPrograms,
  choose,
  resolve_step_loop,
)
from rethinking_jax.engine.streaming import StreamInputs, StreamPrograms


@dataclasses.dataclass(frozen=True)
class _Sections:
  """The sections of a run config that assembling it reads (each room's own: sections.py)."""

  data: Any
  model: Any
  program: Any
  engine: Any

  @classmethod
  def of(cls, config) -> _Sections:
    return cls(data_inputs.SECTION.of(config), models.SECTION.of(config),
               program.SECTION.of(config), strategies.SECTION.of(config))


@dataclasses.dataclass
class Run:
  """Everything a run needs on the device, built from a validated config."""

  specs: list
  dataset: data.Dataset | stream.StreamedDataset  # what it was opened from (its sizes, name)
  programs: CompiledMembers  # MemberPrograms, or StreamPrograms on the streaming path
  members: members_lib.MemberArrays
  inputs: program.DeviceInputs | StreamInputs  # what the programs read, one per input path
  settings: loop.FitSettings

  def fit(self, on_eval=lambda records: None, **resume) -> loop.FitResult:
    """loop.fit over this run; `resume`: state=, progress=, after_eval=, pace=, profile=
    (loop.fit)."""
    return loop.fit(self.programs, self.specs, self.members, self.inputs, self.settings,
                    on_eval, **resume)

  def close(self) -> None:
    self.inputs.close()


def _open(config, resolved=None):
  """(members, dataset, mesh shape, member strategy) of a checked config, with every check
  that needs the data: the one place where `auto` is resolved. `resolved`:
  configuration.validate's result (its members), where the caller has it."""
  specs = resolved.members if resolved is not None else members_lib.from_config(config)
  c = _Sections.of(config)
  dataset = data.from_config(config)
  try:
    _check_against_data(c, dataset)
    mesh_shape = functools.partial(sharding.mesh_shape, c.engine.mesh_shape, len(specs),
                                   c.program.batch_size)
    strategy, shape = choose(c.engine.member_strategy, mesh_shape,
                             models.record(c.model.model), jax.devices()[0].platform)
  except BaseException:
    dataset.close()
    raise
  return specs, dataset, shape, strategy


def _check_against_data(c: _Sections, dataset) -> None:
  """Checks that need the opened dataset (still before anything is written)."""
  n, batch_size, crop_size = dataset.num_train, c.program.batch_size, c.data.crop_size
  require(batch_size <= n, f"batch_size: {batch_size} is larger than the "
          f"training set ({n} examples of {dataset.name}); allowed: 1..{n}")
  smallest = models.record(c.model.model).min_input
  side = min(preprocess.cropped_shape(dataset.image_shape, crop_size)[:2])
  require(side >= smallest, f"crop_size: {c.model.model} needs inputs of at least "
          f"{smallest}x{smallest}, these are {side}x{side} (crop_size={crop_size}, "
          f"images {dataset.image_shape[0]}x{dataset.image_shape[1]}); allowed: "
          f"crop_size >= {smallest} or 0, on images at least that large")


def check(config, resolved=None) -> None:
  """Raises the UserError that prepare(config) would, without building or placing anything
  (a suite checks all its runs before the first one trains)."""
  _, dataset, _, _ = _open(config, resolved)
  dataset.close()


def prepare(config, resolved=None) -> Run:
  """Opens the data of a checked `config` (on the device, or as a stream) and compiles
  nothing yet; raises the UserError of what needs the data early."""
  c = _Sections.of(config)
  xla_cpu.apply(c.engine.conv_impl)  # before JAX opens its backend, if it can
  specs, dataset, shape, strategy = _open(config, resolved)
  mesh = sharding.make_mesh(shape)
  spec = program.ProgramSpec.from_config(config, dataset, specs, mesh, strategy.conv_form)
  settings = loop.FitSettings.from_config(config)
  host_members = members_lib.stack(specs)
  memory_estimate = _check_memory(c, spec, dataset, host_members, strategy)
  if isinstance(dataset, stream.StreamedDataset):  # the one place that asks the path
    channels = dataset.channels  # the statistics only matter to Gaussian members
    mean, std = (dataset.channel_stats(c.data.crop_size) if "gaussian" in spec.kinds_present
                 else (np.zeros(channels), np.ones(channels)))
    stream_inputs = StreamInputs(
        spec, dataset,
        data.subset_indices(dataset.num_train, c.data.eval_train_examples, specs[0].seed),
        mean, std, c.data.prefetch_batches)
    stream_programs = StreamPrograms(spec, strategy,
                                     jax.tree.map(lambda x: x[0], host_members))
    stream_programs.memory_estimate = memory_estimate
    return Run(specs, dataset, stream_programs, stream_programs.place_members(host_members),
               stream_inputs, settings)
  mean, std = preprocess.channel_stats(dataset.train_images, c.data.crop_size)
  step_loop = resolve_step_loop(c.engine.step_loop, models.record(c.model.model).convolutional,
                                jax.devices()[0].platform)
  programs = MemberPrograms(spec, strategy, step_loop)
  programs.memory_estimate = memory_estimate
  member_arrays = programs.place_members(host_members)
  true_labels = sharding.place((dataset.train_labels, dataset.test_labels),
                               sharding.replicated(mesh))
  inputs = program.DeviceInputs(
      programs.labels(member_arrays, *true_labels),
      loop.device_data(dataset.train_images, dataset.test_images, mean, std, mesh))
  return Run(specs, dataset, programs, member_arrays, inputs, settings)


def _check_memory(c: _Sections, spec, dataset, host_members, strategy) -> int:
  """Refuses, in one line, members that cannot fit (engine/memory.py), before compiling;
  the estimated bytes (logged beside each compiled program's own buffers)."""
  streamed = isinstance(dataset, stream.StreamedDataset)
  data_bytes = 0 if streamed else dataset.train_images.nbytes + dataset.test_images.nbytes
  labels = 0 if streamed else 5 * dataset.num_train + 4 * dataset.num_test
  est = memory.estimate(spec.model, spec.input_shape, c.program.batch_size, labels, data_bytes)
  device = jax.devices()[0]
  members_here = len(jax.tree.leaves(host_members)[0])
  if spec.mesh is not None:  # the member axis spreads them over devices
    members_here = -(-members_here // spec.mesh.shape["member"])
  available = (memory.host_available() if device.platform == "cpu"
               else memory.device_available(device))
  return memory.check(est, members_here, strategy, c.model.model, c.program.batch_size,
                      available)
