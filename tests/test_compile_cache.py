"""The runs' persistent compilation cache (rethinking_jax/engine/compile_cache.py)."""

import os
import subprocess
import sys

import pytest

from rethinking_jax.engine import compile_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_where_the_cache_is(monkeypatch, tmp_path):
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
  monkeypatch.delenv(compile_cache.ENV, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  assert compile_cache.directory() == tmp_path / "rethinking_jax" / "xla"
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))
  assert compile_cache.directory() == tmp_path / "jax"
  monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "ours"))
  assert compile_cache.directory() == tmp_path / "ours"
  monkeypatch.setenv(compile_cache.ENV, "off")
  assert compile_cache.directory() is None and compile_cache.enable() is None


def test_a_directory_that_cannot_be_made_leaves_the_cache_off(monkeypatch, tmp_path):
  (tmp_path / "file").write_text("")
  monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "file" / "cache"))
  assert compile_cache.enable() is None


_PROBE = """
import sys
if "hide-filelock" in sys.argv: sys.modules["filelock"] = None
from rethinking_jax.engine import compile_cache
compile_cache.enable()
import jax, jax.numpy as jnp
f = jax.jit(lambda x: jnp.sin(x) @ x.T + 1.0)
f.lower(jnp.ones((64, 64))).compile()
print("ok")
"""


@pytest.mark.parametrize("filelock", ["installed", "hide-filelock"])
def test_a_second_process_reads_the_first_ones_programs(tmp_path, filelock):
  """Also without filelock (JAX's size bound needs it; a fresh environment once lacked it and
  the cache silently wrote nothing): the cache is then unbounded, not off."""
  env = {**os.environ, compile_cache.ENV: str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
  entries = []
  for _ in range(2):
    run = subprocess.run([sys.executable, "-c", _PROBE, filelock], cwd=ROOT, env=env,
                         text=True, capture_output=True, timeout=120)
    assert run.returncode == 0 and run.stdout.split() == ["ok"], run.stderr[-2000:]
    entries.append(sorted(p.name for p in (tmp_path / "cache").iterdir()
                          if not p.name.endswith("-atime")))
  assert entries[0] and entries[1] == entries[0]  # the second compiled nothing new


def test_a_corrupt_cache_entry_is_compiled_again(tmp_path):
  """A torn or corrupt file in the cache (a killed writer, a bad disk) costs a compilation,
  not the run."""
  env = {**os.environ, compile_cache.ENV: str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
  run = lambda: subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, text=True,
                               capture_output=True, timeout=120)
  assert run().returncode == 0
  for entry in (tmp_path / "cache").iterdir():
    if not entry.name.endswith("-atime"):
      entry.write_bytes(b"\x00not a program")
  done = run()
  assert done.returncode == 0 and done.stdout.split() == ["ok"], done.stderr[-500:]
