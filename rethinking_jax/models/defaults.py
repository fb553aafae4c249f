"""The model section of a run config: its fields and their defaults, owned by the models
(models/__init__.py checks it; base_config puts it beside the other rooms' sections).
[default]: the project's choice where the paper is silent.
"""

from rethinking_jax.base import sections

# Batch-norm where the paper is silent [default]: TF-slim's momentum (decay) and epsilon.
BN_MOMENTUM = 0.999
BN_EPSILON = 1e-3

# The formulation (layer_impl) may change on resume: the same numbers up to rounding.
SECTION = sections.Section("model", {
    "model": "mlp_1x512",
    "dropout_rate": 0.0,
    "compute_dtype": "float32",   # float32 | bfloat16 (params and loss stay float32)
    "bn_momentum": BN_MOMENTUM,   # [default]
    "bn_epsilon": BN_EPSILON,     # [default]
    # max-pool / LRN formulation: auto | xla | custom (auto: custom on CPU; models/layers.py).
    # Same numbers up to rounding
    "layer_impl": "auto",
}, resume_may_change=frozenset({"layer_impl"}))
