"""The base config every paper config starts from: `rethinking_jax.run.base_config`, the rooms'
sections put together (the field list lives in the package so that the code can tell what a
field's default is). `python -m rethinking_jax.configs.default` lists every field, its
default and its section."""

from rethinking_jax.run import base_config
from rethinking_jax.run.base_config import get_config  # noqa: F401


def check_arg(arg, config_name: str, allowed=()) -> None:
  """Refuses an argument a config does not take: `quickstart.py:foo` would otherwise run the
  plain config as if nothing had been asked."""
  if arg in (None, "") or arg in allowed:
    return
  takes = f"allowed: {', '.join(allowed)}" if allowed else "it takes none"
  raise ValueError(f"config argument {arg!r}: {config_name} does not take it; {takes}")


def field_table() -> str:
  """Every field as 'section  field = default', '(resumable)' where a resumed run may change
  it, section by section in base_config's order."""
  lines = []
  for section in base_config.all_sections():
    for name, default in section.defaults().items():
      shown = "{}" if name == "runs" else repr(default)
      note = "  (may change on resume)" if name in section.resume_may_change else ""
      lines.append(f"{section.name:<10} {name} = {shown}{note}")
  return "\n".join(lines)


if __name__ == "__main__":
  print(field_table())
