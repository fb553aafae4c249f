"""The install declares what the package imports (pyproject.toml)."""

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Imported only behind a check, with a one-line error when absent (extras).
OPTIONAL = {"torch", "tensorflow", "tensorboardX", "wandb"}


def _imported_modules() -> set[str]:
  found = set()
  for folder, _, names in os.walk(os.path.join(ROOT, "rethinking_jax")):
    for name in names:
      if name.endswith(".py"):
        with open(os.path.join(folder, name)) as f:
          tree = ast.parse(f.read())
        for node in ast.walk(tree):
          if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
          elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
  return found


def _name(requirement: str) -> str:
  return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_third_party_import_is_a_declared_dependency():
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    project = tomllib.load(f)["project"]
  declared = {_name(r) for r in project["dependencies"]}
  extras = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
  distributions = importlib.metadata.packages_distributions()
  missing = []
  for module in sorted(_imported_modules() - set(sys.stdlib_module_names) - {"rethinking_jax"}):
    dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
    if module in OPTIONAL:
      assert dists & extras, (module, "an optional import not in an extra")
      continue
    if not dists & declared:
      missing.append(f"{module} ({', '.join(sorted(dists))})")
  assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_protocol_citation_names_a_section_of_the_repositorys_protocol():
  """The code, READMEs and reports cite docs/PROTOCOL.md §N (or §N-M); each N is one of its
  headings, and nothing cites the build spec the repository does not hold."""
  with open(os.path.join(ROOT, "docs", "PROTOCOL.md")) as f:
    headings = set(re.findall(r"^## §(\d+) ", f.read(), re.MULTILINE))
  tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
  absent = "PAPER" + ".md"
  cited, stray = set(), []
  for name in tracked:
    if not name.endswith((".py", ".md", ".sh", ".toml")) or name == "docs/PROTOCOL.md":
      continue
    with open(os.path.join(ROOT, name), errors="replace") as f:
      text = f.read()
    for first, last in re.findall(r"PROTOCOL\.md §(\d+)(?:[-–](\d+))?", text):
      cited |= {str(n) for n in range(int(first), int(last or first) + 1)}
    if absent in text:
      stray.append(name)
  assert cited and cited <= headings, sorted(cited - headings)
  assert not stray, stray


@pytest.mark.slow
def test_the_wheel_ships_the_configs_and_the_type_marker(tmp_path):
  """`pip install .` gives the paper's configs (usable by name from any directory) and
  py.typed (PEP 561), not only the modules. Built from a copy of the sources: a build/
  folder left in the checkout would hand setuptools files the sources no longer declare."""
  source = tmp_path / "source"
  shutil.copytree(os.path.join(ROOT, "rethinking_jax"), source / "rethinking_jax",
                  ignore=shutil.ignore_patterns("__pycache__"))
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(ROOT, name), source)
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                  "--no-build-isolation", "--wheel-dir", str(tmp_path), str(source)],
                 check=True, capture_output=True, cwd=tmp_path)
  [wheel] = tmp_path.glob("rethinking_jax-*.whl")
  names = set(zipfile.ZipFile(wheel).namelist())
  assert "rethinking_jax/py.typed" in names
  assert {"rethinking_jax/configs/table1.py", "rethinking_jax/configs/figure1.py"} <= names
