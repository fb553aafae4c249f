"""The command line of `rethinking-jax train`: flag parsing, --help, and the one-line error
for every mistake in naming a config or a field (exit 2, nothing written)."""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path

from absl import flags

from rethinking_jax import configs
from rethinking_jax.base.errors import UserError
from rethinking_jax.run.process import fail

_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)?: ")


def one_line(err: BaseException) -> str:
  """The message of `err` on one line; when it embeds a traceback (config_flags wraps errors
  raised while loading a config file that way), only the innermost exception's message."""
  text = str(err)
  if "Traceback (most recent call last)" in text:
    lines = [line.strip() for line in text.splitlines() if _EXCEPTION_LINE.match(line.strip())]
    if lines:
      return lines[-1].split(": ", 1)[1]
  if isinstance(err, SyntaxError):
    return f"{err.filename}, line {err.lineno}: {err.msg}"
  return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _shipped_config(argv) -> list[str]:
  """argv with a `--config` that names no file here but a config the package ships
  (configs.shipped) pointing at that file."""
  out = []
  for arg in argv:
    if arg.startswith("--config="):
      path, sep, rest = arg[len("--config="):].partition(":")
      arg = f"--config={configs.shipped(path) or path}{sep}{rest}"
    out.append(arg)
  return out


def _config_import_root(argv) -> None:
  """A config of one's own may import its package (`from myconfigs import common`): put the
  directory above a `--config` file's package on sys.path, so that
  `--config=/path/to/myconfigs/table.py` works from any working directory."""
  for arg in argv:
    if arg.startswith("--config="):
      folder = os.path.dirname(os.path.abspath(arg[len("--config="):].partition(":")[0]))
      if os.path.isfile(os.path.join(folder, "__init__.py")):
        root = os.path.dirname(folder)
        if root not in sys.path:
          sys.path.insert(0, root)


_HELP_FLAGS = ("-h", "--help", "-?", "--helpshort", "--helpfull")
_USAGE = """\
usage: rethinking-jax [train] --config=CONFIG.py[:ARG] --workdir=DIR [--config.FIELD=VALUE ...]
       (or python -m rethinking_jax.main ...)
       rethinking-jax report --workdir=DIR [--sources=DIR,...]   re-render a report
       rethinking-jax measures --workdir=DIR [--examples=N]      complexity measures

  --config=PATH[:ARG]     a config file (configs/*.py) and its optional argument, e.g.
                          configs/quickstart.py, configs/table1.py:mlp,seeds=3; the
                          package's own (rethinking_jax/configs) by name from anywhere:
                          table1.py:smoke
  --workdir=DIR           the run's outputs: checkpoints, metrics.jsonl, summary.json,
                          report.md (a previous run's workdir resumes it)
  --config.FIELD=VALUE    override one field, e.g. --config.num_epochs=20
  --help                  this text; with --config=PATH[:ARG]: that config's variants
                          (its docstring) and every field with its value

Exit status: 0 done; 2 a user mistake or a predictable fault (one line, nothing written);
3 stopped by SIGTERM/SIGINT/SIGHUP with a checkpoint (rerun to resume); 4 every member
diverged; 130 Ctrl-C before training began.
Every field and its default: python -m rethinking_jax.configs.default. Examples: README.md,
docs/running.md."""


def _config_file(argv) -> tuple[str, str] | None:
  """(path, argument) of the last --config=PATH[:ARG] of `argv`, or None."""
  given = [a[len("--config="):] for a in argv if a.startswith("--config=")]
  if not given:
    return None
  path, _, arg = given[-1].partition(":")
  return path, arg


def _help(argv) -> None:
  """Prints the usage (and, with --config, that config's variants and fields); exits 0."""
  import runpy

  print(_USAGE)
  named = _config_file(argv)
  if named:
    path, arg = named
    _check_config_path(path)
    try:
      module = runpy.run_path(path)
      config = module["get_config"](arg or None)
    except Exception as err:  # noqa: BLE001 -- a config that does not load: one line
      fail(f"config: {one_line(err)}")
    print(f"\n{path}:\n{(module.get('__doc__') or '(no docstring)').strip()}\n")
    print(f"fields of {path}{':' + arg if arg else ''} (--config.FIELD=VALUE):")
    for key in sorted(config.keys()):
      value = config[key]
      shown = (f"{{{', '.join(sorted(value.keys()))}}}" if hasattr(value, "keys")
               else repr(value))
      print(f"  {key} = {shown}")
  sys.exit(0)


def parse_flags(argv):
  """absl flag parsing with one-line errors and exit code 2 (absl prints usage, exits 1)."""
  argv = _shipped_config(argv)
  _config_import_root(argv)
  if any(a in _HELP_FLAGS for a in argv[1:]):
    _help(argv)
  named = _config_file(argv)
  if named:
    _check_config_path(named[0])
  try:
    return flags.FLAGS(argv)
  except AttributeError as err:
    if "get_config" in str(err):  # config_flags found no get_config in the file
      fail(f"config: {named[0] if named else 'the file'} defines no get_config(); a config "
            "file defines get_config(arg=None) returning an ml_collections.ConfigDict (e.g. "
            "configs/quickstart.py)")
    _unknown_field(argv, err)
  except KeyError as err:  # --config.FIELD the config does not have
    _unknown_field(argv, err)
  except flags.Error as err:
    fail(one_line(err) or type(err).__name__)
  except Exception as err:  # noqa: BLE001 -- a config file that does not load: one line
    fail(f"config: {one_line(err)}")


def _configs_in(folder: str) -> list[str]:
  return sorted(n for n in os.listdir(folder) if n.endswith(".py") and "def get_config"
                in Path(folder, n).read_text(errors="replace"))


def _check_config_path(path: str) -> None:
  """--config names a file: one line for a folder (naming its configs) or a missing path."""
  if os.path.isdir(path):
    found = _configs_in(path)
    fail(f"config: {path} is a folder; allowed: a config file"
          + (f" in it: {', '.join(found)}" if found else ", e.g. configs/quickstart.py"))
  if not os.path.isfile(path):
    fail(f"config: {path} does not exist (--config=PATH[:ARG] names a config file, or one "
          f"the package ships: {', '.join(_configs_in(configs.FOLDER))})")


def _unknown_field(argv, err: Exception) -> None:
  """The one line for --config.FIELD that the config does not have."""
  # ml_collections' message: "'name'\nDid you mean ...?" (escaped once more by KeyError).
  found = re.search(r"[\w.]+", str(err.args[0] if err.args else "?"))
  field = found.group(0) if found else "?"
  paths = [a[len("--config."):].split("=")[0] for a in argv if a.startswith("--config.")]
  nested = [path for path in paths if "." in path and path.rsplit(".", 1)[1] == field]
  if nested:  # --config.runs.NAME.FIELD: the run has no such field
    fail(f"config: unknown field {nested[0]!r} (that run does not set {field}; a "
          f"command-line --config.{field} applies to the runs that do not)")
  fields = _config_fields(argv)
  close = difflib.get_close_matches(field, fields, n=3)
  hint = (f"did you mean {' or '.join(close)}? " if close else "") + (
      "every field and its default: configs/default.py (python -m "
      "rethinking_jax.configs.default lists them)")
  fail(f"config: unknown field {field!r}; {hint}")


def _config_fields(argv) -> list[str]:
  """The fields of the config file named on the command line (for an error message)."""
  import runpy

  for arg in argv:
    if arg.startswith("--config="):
      path, _, config_arg = arg[len("--config="):].partition(":")
      try:
        get_config = runpy.run_path(path)["get_config"]
        return sorted((get_config(config_arg) if config_arg else get_config()).keys())
      except Exception:  # only for the message; the real error is reported anyway
        return []
  return []


def load_config(config_flag):
  """The parsed config of `config_flag` (the --config flag); a file that is missing or fails
  to load is a one-line error."""
  try:
    config = config_flag.value
    if config is None:
      fail("--config is required, e.g. --config=configs/quickstart.py")
    config.keys()  # config_flags defers load errors until the config is first used
    return config
  except UserError as err:
    fail(str(err))
  except Exception as err:  # noqa: BLE001 -- any failure to load the user's config file
    fail(f"config: {one_line(err)}")
