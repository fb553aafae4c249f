"""The base config every paper config starts from: `rethinking_jax.base_config` (the field
list lives in the package so that the code can tell what a field's default is)."""

from rethinking_jax.base_config import get_config  # noqa: F401
