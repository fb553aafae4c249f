"""Evolved fooling images with MAP-Elites (Nguyen et al. 2015): an archive of one elite per
class; each generation mutates elites and keeps a child wherever it beats a class champion.

Two encodings: direct (one gene per pixel, polynomial mutation) and CPPN (a fixed-topology
network of sine / sigmoid / Gaussian / linear nodes over pixel coordinates; weights and
activation choices evolve). A generation is one compiled step: the whole population is
mutated and evaluated as one batch on the device; the archive only ever improves.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Archive(NamedTuple):
  genomes: jax.Array     # [K, G] one elite per class
  fitness: jax.Array     # [K] its confidence for that class


# ---- direct encoding ------------------------------------------------------------------------

def polynomial_mutation(key, genes, rate, eta: float = 15.0):
  """Deb's polynomial mutation on [0, 1] genes, each gene mutated with probability `rate`."""
  k_pick, k_u = jax.random.split(key)
  u = jax.random.uniform(k_u, genes.shape)
  delta = jnp.where(u < 0.5, (2 * u) ** (1 / (eta + 1)) - 1, 1 - (2 * (1 - u)) ** (1 / (eta + 1)))
  mutate = jax.random.uniform(k_pick, genes.shape) < rate
  return jnp.clip(jnp.where(mutate, genes + delta, genes), 0.0, 1.0)


# ---- CPPN encoding --------------------------------------------------------------------------

ACTIVATIONS = ("sine", "sigmoid", "gaussian", "linear")


def _activate(z, choice):
  return jnp.select([choice == 0, choice == 1, choice == 2],
                    [jnp.sin(z), jax.nn.sigmoid(z), jnp.exp(-z**2)], z)


class CPPN(NamedTuple):
  height: int
  width: int
  channels: int
  hidden: int = 16
  layers: int = 2

  @property
  def sizes(self):
    dims = [4] + [self.hidden] * self.layers + [self.channels]
    return list(zip(dims[:-1], dims[1:], strict=True))

  @property
  def num_weights(self) -> int:
    return sum(i * o + o for i, o in self.sizes)

  @property
  def genome_size(self) -> int:
    return self.num_weights + self.hidden * self.layers  # + one activation gene per node

  def render(self, genome):
    """Genome -> image [H, W, C] in [0, 1]: inputs (x, y, distance, bias) per pixel."""
    ys, xs = jnp.meshgrid(jnp.linspace(-1, 1, self.height), jnp.linspace(-1, 1, self.width),
                          indexing="ij")
    h = jnp.stack([xs, ys, jnp.sqrt(xs**2 + ys**2), jnp.ones_like(xs)], -1).reshape(-1, 4)
    offset = 0
    acts = genome[self.num_weights:]
    for layer, (i, o) in enumerate(self.sizes):
      w = genome[offset:offset + i * o].reshape(i, o)
      b = genome[offset + i * o:offset + i * o + o]
      offset += i * o + o
      h = h @ w + b
      if layer < self.layers:
        choice = jnp.floor(acts[layer * self.hidden:(layer + 1) * self.hidden] * 4).clip(0, 3)
        h = _activate(h, choice)
    return jax.nn.sigmoid(h).reshape(self.height, self.width, self.channels)

  def init(self, key, n):
    k_w, k_a = jax.random.split(key)
    return jnp.concatenate([jax.random.normal(k_w, (n, self.num_weights)),
                            jax.random.uniform(k_a, (n, self.genome_size - self.num_weights))],
                           axis=1)

  def mutate(self, key, genomes, rate):
    k_pick, k_noise, k_act, k_pick_a = jax.random.split(key, 4)
    w = genomes[:, :self.num_weights]
    pick = jax.random.uniform(k_pick, w.shape) < rate
    w = w + jnp.where(pick, 0.5 * jax.random.normal(k_noise, w.shape), 0.0)
    a = genomes[:, self.num_weights:]
    swap = jax.random.uniform(k_pick_a, a.shape) < rate / 2
    a = jnp.where(swap, jax.random.uniform(k_act, a.shape), a)
    return jnp.concatenate([w, a], axis=1)


# ---- the algorithm --------------------------------------------------------------------------

def _update(archive: Archive, children, probs) -> Archive:
  """Each class keeps its champion unless the best child for that class beats it."""
  best_child = jnp.argmax(probs, axis=0)                     # [K]
  best_prob = jnp.max(probs, axis=0)
  better = best_prob > archive.fitness
  genomes = jnp.where(better[:, None], children[best_child], archive.genomes)
  return Archive(genomes, jnp.where(better, best_prob, archive.fitness))


@functools.partial(jax.jit, static_argnames=("probs_fn", "render", "mutate", "generations",
                                             "population"))
def _evolve(probs_fn, render, mutate, archive, key, start, generations: int, population: int,
            rate0, halve_every):
  def generation(archive, g):
    k_parent, k_mut = jax.random.split(jax.random.fold_in(key, g))
    rate = rate0 * 0.5 ** ((start + g) // halve_every)
    parents = archive.genomes[jax.random.randint(k_parent, (population,), 0,
                                                 archive.genomes.shape[0])]
    children = mutate(k_mut, parents, rate)
    probs = probs_fn(jax.vmap(render)(children))
    archive = _update(archive, children, probs)
    return archive, archive.fitness

  return jax.lax.scan(generation, archive, jnp.arange(generations))


def evolve(probs_fn, encoding: str, image_shape, num_classes: int, generations: int = 200,
           population: int = 64, seed: int = 0, rate: float = 0.1, halve_every: int = 1000,
           cppn_hidden: int = 16):
  """Runs MAP-Elites; returns (final archive, best images [K, ...], fitness per generation
  [generations, K])."""
  key = jax.random.key(seed)
  h, w, c = image_shape
  if encoding == "direct":
    size = h * w * c
    render = lambda g: g.reshape(h, w, c)
    mutate = lambda k, g, r: polynomial_mutation(k, g, r)
    init = jax.random.uniform(jax.random.fold_in(key, 1), (population, size))
  elif encoding == "cppn":
    net = CPPN(h, w, c, hidden=cppn_hidden)
    render, mutate = net.render, net.mutate
    init = net.init(jax.random.fold_in(key, 1), population)
  else:
    raise ValueError(f"encoding: unknown value {encoding!r}; allowed: cppn, direct")
  probs = probs_fn(jax.vmap(render)(init))
  archive = _update(Archive(init[:num_classes], jnp.full((num_classes,), -1.0)), init, probs)
  archive, history = _evolve(probs_fn, render, mutate, archive, jax.random.fold_in(key, 2), 0,
                             generations, population, rate, halve_every)
  return archive, np.asarray(jax.vmap(render)(archive.genomes)), np.asarray(history)
