"""User-facing errors: one line, naming the field and the allowed values."""


class UserError(ValueError):
  """A mistake in the user's input (config, path, name); reported in one line, exit code 2."""


def unknown_name(field: str, value, allowed) -> UserError:
  """Error for a name that is not in a registry; lists every valid name."""
  return UserError(f"{field}: unknown value {value!r}; allowed: {', '.join(sorted(allowed))}")
