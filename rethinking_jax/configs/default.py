"""The base config every paper config starts from: `rethinking_jax.base_config` (the field
list lives in the package so that the code can tell what a field's default is)."""

from rethinking_jax.base_config import get_config  # noqa: F401


def check_arg(arg, config_name: str, allowed=()) -> None:
  """Refuses an argument a config does not take: `quickstart.py:foo` would otherwise run the
  plain config as if nothing had been asked."""
  if arg in (None, "") or arg in allowed:
    return
  takes = f"allowed: {', '.join(allowed)}" if allowed else "it takes none"
  raise ValueError(f"config argument {arg!r}: {config_name} does not take it; {takes}")
