"""User-facing errors: one line, naming the field and the allowed values."""


class UserError(ValueError):
  """A mistake in the user's input (config, path, name); reported in one line, exit code 2."""


def unknown_name(field: str, value, allowed) -> UserError:
  """Error for a name that is not in a registry; lists every valid name."""
  return UserError(f"{field}: unknown value {value!r}; allowed: {', '.join(sorted(allowed))}")


def require(ok: bool, message: str) -> None:
  """Raises UserError(message) unless `ok`: a room's check of its own config fields."""
  if not ok:
    raise UserError(message)


def one_of(field: str, value, allowed) -> None:
  """Raises the one-line error of a name that is not among `allowed`."""
  if value not in allowed:
    raise unknown_name(field, value, allowed)
