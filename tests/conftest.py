import os
import tempfile

# Tests run on the CPU, quietly; identical programs compiled by different tests are compiled
# once (JAX's persistent compilation cache, in a directory shared by this session's xdist
# workers and subprocesses). The tests' programs are tiny: XLA's backend optimizations cost far
# more compile time than they save (`JAX_DISABLE_MOST_OPTIMIZATIONS`; the quickstart test runs
# fully optimized, as users do). Both are inherited by the tests' subprocesses.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      tempfile.mkdtemp(prefix="rethinking_jax_test_cache_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
