"""The paper's configs, shipped in the package, so that they work after a plain `pip install`
from any directory (`--config=table1.py:smoke`); `configs/` at the repository's root links
here, for the documented paths (`--config=configs/table1.py`)."""

import os

FOLDER = os.path.dirname(os.path.abspath(__file__))


def shipped(path: str) -> str | None:
  """The config file the package ships that `path` names ('NAME.py' or 'configs/NAME.py')
  where no such file exists from here; otherwise None (a path of one's own, or a typo that
  stays an error)."""
  candidate = os.path.join(FOLDER, os.path.basename(path))
  if (os.path.dirname(os.path.normpath(path)) in ("", "configs") and path.endswith(".py")
      and not os.path.exists(path) and os.path.isfile(candidate)):
    return candidate
  return None
