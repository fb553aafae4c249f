"""The paper's six randomization tests as pure functions of (seed, example index).

Nothing is redrawn across epochs: every corrupted label, permutation and noise image is a
function of the member's seed and the example's index in its split, so it is the same each
time the example is seen. Nothing is stored per member either: many members share one uint8
copy of the images on the device and derive their inputs on the fly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from rethinking_jax.base.errors import UserError, unknown_name

LABEL_KINDS = ("true_labels", "corrupt_labels", "random_labels")
# Every kind and its int32 code (a member's `kind` on the device): the label kinds, then each
# input randomization in the order register_input added it. Extended only by register_input.
KINDS: list[str] = list(LABEL_KINDS)
KIND_CODE: dict[str, int] = {name: code for code, name in enumerate(KINDS)}

# Independent random streams derived from one member seed (an input randomization's own
# stream is given when it is registered).
_STREAM = {"labels": 1, "shuffle": 2, "pixels": 3, "gaussian": 4}
_SPLIT = {"train": 0, "test": 1}


@dataclasses.dataclass(frozen=True)
class InputRandomization:
  """An input randomization: `apply(x, index, key, mean, std) -> x'` on cropped [0,1] images
  x [B,H,W,C] with their example positions `index` [B] in their split. `key` is the member's
  own stream for it (folded with the split when `per_split`), so every draw is a function of
  (seed, split, index): fixed across epochs. mean/std [C]: the training set's channel
  statistics."""

  stream: int
  per_split: bool
  apply: Callable


# name -> InputRandomization, in registration order.
INPUT_RANDOMIZATIONS: dict[str, InputRandomization] = {}


def register_input(name: str, randomization: InputRandomization) -> None:
  """Adds an input randomization kind (usable in `randomizations=` from then on)."""
  if name in KIND_CODE:
    raise ValueError(f"randomization {name!r} exists already")
  if randomization.stream in {_STREAM["labels"], *(r.stream for r in
                                                   INPUT_RANDOMIZATIONS.values())}:
    raise ValueError(f"randomization {name!r}: stream {randomization.stream} is taken")
  INPUT_RANDOMIZATIONS[name] = randomization
  KINDS.append(name)
  KIND_CODE[name] = len(KINDS) - 1


def input_kinds() -> tuple[str, ...]:
  return tuple(INPUT_RANDOMIZATIONS)


@dataclasses.dataclass(frozen=True)
class Randomization:
  """One randomization test: a kind and, for corrupt_labels, the corruption probability p."""

  kind: str
  p: float = 0.0

  @property
  def label(self) -> str:
    return f"{self.kind}(p={self.p:g})" if self.kind == "corrupt_labels" else self.kind

  @property
  def label_p(self) -> float:
    """The label-corruption probability this test applies to training labels."""
    return {"corrupt_labels": self.p, "random_labels": 1.0}.get(self.kind, 0.0)


def parse(spec: str) -> Randomization:
  """'true_labels' | 'corrupt_labels:0.4' | 'random_labels' | ... -> Randomization."""
  name, _, arg = spec.strip().partition(":")
  if name not in KIND_CODE:
    raise unknown_name("randomizations", name, KINDS)
  if name != "corrupt_labels":
    if arg:
      raise UserError(f"randomizations: {name!r} takes no argument (got {spec!r}); only "
                      "corrupt_labels:P takes a corruption probability")
    return Randomization(name, 1.0 if name == "random_labels" else 0.0)
  try:
    p = float(arg)
  except ValueError:
    raise UserError(f"randomizations: {spec!r} needs a probability, e.g. corrupt_labels:0.4 "
                    "(p in [0, 1])") from None
  if not 0.0 <= p <= 1.0:
    raise UserError(f"randomizations: corruption probability p={p:g} in {spec!r} is outside "
                    "[0, 1]")
  return Randomization(name, p)


def stream(key: jax.Array, name: str, split: str | None = None) -> jax.Array:
  key = jax.random.fold_in(key, _STREAM[name])
  return key if split is None else jax.random.fold_in(key, _SPLIT[split])


def corrupt_labels(key: jax.Array, labels: jax.Array, index: jax.Array, p,
                   num_classes: int) -> jax.Array:
  """With probability p (per example) a label becomes a uniform random class.

  The new class may equal the old one, so the expected changed fraction is p*(1-1/K).
  """
  def one(i, y):
    k_replace, k_class = jax.random.split(jax.random.fold_in(key, i))
    replace = jax.random.uniform(k_replace) < p
    return jnp.where(replace, jax.random.randint(k_class, (), 0, num_classes), y)

  return jax.vmap(one)(index, labels).astype(jnp.int32)


def pixel_permutation(key: jax.Array, num_positions: int) -> jax.Array:
  return jax.random.permutation(key, num_positions)


def permute_pixels(x: jax.Array, perm: jax.Array) -> jax.Array:
  """Moves pixel positions of [B,H,W,C] images by perm [B?, H*W]; channels move together."""
  batch, height, width, channels = x.shape
  flat = x.reshape(batch, height * width, channels)
  if perm.ndim == 1:
    out = flat[:, perm, :]
  else:
    out = jnp.take_along_axis(flat, perm[:, :, None], axis=1)
  return out.reshape(x.shape)


def per_image_permutations(key: jax.Array, index: jax.Array, num_positions: int) -> jax.Array:
  """A different permutation for every example index: [B, num_positions]."""
  return jax.vmap(lambda i: pixel_permutation(jax.random.fold_in(key, i), num_positions))(index)


def gaussian_images(key: jax.Array, index: jax.Array, shape, mean, std) -> jax.Array:
  """Noise images N(mean_c, std_c^2) per channel, one fixed image per example index."""
  noise = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), shape))(index)
  return noise * std + mean


def randomize_inputs(x: jax.Array, index: jax.Array, kind, key: jax.Array, split: str,
                     mean, std, kinds_present=None) -> jax.Array:
  """Applies the member's input randomization to cropped [0,1] images x [B,H,W,C].

  `kind` may be traced (one code per member under vmap); only the input kinds listed in
  `kinds_present` (default: all) are computed, so runs without them pay nothing.
  """
  names = [name for name in INPUT_RANDOMIZATIONS
           if kinds_present is None or name in kinds_present]
  if not names:
    return x

  def branch(name):
    r = INPUT_RANDOMIZATIONS[name]
    own = jax.random.fold_in(key, r.stream)
    if r.per_split:
      own = jax.random.fold_in(own, _SPLIT[split])
    return lambda x: r.apply(x, index, own, mean, std).astype(x.dtype)

  # A switch, not a select over every kind: a member computes only its own randomization
  # (under vmap JAX turns it into the select, so vmapped members pay for every kind present)
  which = sum(jnp.where(kind == KIND_CODE[name], i + 1, 0) for i, name in enumerate(names))
  return jax.lax.switch(which, [lambda x: x] + [branch(name) for name in names], x)


# The paper's three input randomizations (docs/PROTOCOL.md §2). Their streams are the ones they
# always had: changing one would change every number of a run that uses it.
register_input("shuffled_pixels", InputRandomization(  # one permutation for train and test
    _STREAM["shuffle"], per_split=False,
    apply=lambda x, index, key, mean, std: permute_pixels(
        x, pixel_permutation(key, x.shape[1] * x.shape[2]))))
register_input("random_pixels", InputRandomization(  # a permutation per image
    _STREAM["pixels"], per_split=True,
    apply=lambda x, index, key, mean, std: permute_pixels(
        x, per_image_permutations(key, index, x.shape[1] * x.shape[2]))))
register_input("gaussian", InputRandomization(  # N(mean_c, std_c^2) noise per image
    _STREAM["gaussian"], per_split=True,
    apply=lambda x, index, key, mean, std: gaussian_images(key, index, x.shape[1:], mean,
                                                           std)))
