"""The model fields of a run config and their defaults, owned by the models.

base_config takes the model section from here, and models.from_config reads a record written
before one of these fields existed with it (the behaviour the code had before), so each
default is said once. [default]: the project's choice where the paper is silent.
"""

# Batch-norm where the paper is silent [default]: TF-slim's momentum (decay) and epsilon.
BN_MOMENTUM = 0.999
BN_EPSILON = 1e-3

FIELDS = {
    "model": "mlp_1x512",
    "dropout_rate": 0.0,
    "compute_dtype": "float32",   # float32 | bfloat16 (params and loss stay float32)
    "bn_momentum": BN_MOMENTUM,   # [default]
    "bn_epsilon": BN_EPSILON,     # [default]
    # max-pool / LRN formulation: auto | xla | custom (auto: custom on CPU; models/layers.py).
    # Same numbers up to rounding
    "layer_impl": "auto",
}
