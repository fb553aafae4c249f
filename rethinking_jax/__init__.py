"""rethinking_jax: a JAX/Flax reproduction of Zhang et al. (ICLR 2017).

"Understanding deep learning requires rethinking generalization": networks fit
random labels, shuffled pixels and pure noise to 100% training accuracy.
"""

__version__ = "0.1.0"
