# Two commands from a fresh clone (only Python 3.11 + pip needed):
#   make test   -> creates .venv, installs the package with its test extra, runs the tests
#   make demo   -> creates .venv, trains the offline quickstart, writes runs/quickstart/report.md
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	@echo "installing into $(VENV) (jax, flax, optax, orbax, tfds...; ~1-2 min, once)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

.PHONY: install test demo lint
install: $(VENV)/.installed

# Two pytest runs, each with its own time and its 15 slowest tests: the fast tier, then the
# end-to-end checks in subprocesses (`slow`). WORKERS xdist processes (tests that share a
# module fixture stay on one worker: --dist loadgroup).
WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(WORKERS) --dist loadgroup --durations=15
test: $(VENV)/.installed
	@start=$$(date +%s); $(PYTEST) -m "not slow" && \
	  echo "fast tier: $$(( $$(date +%s) - start )) s"
	@start=$$(date +%s); $(PYTEST) -m slow && \
	  echo "slow tier: $$(( $$(date +%s) - start )) s"

demo: $(VENV)/.installed
	$(PY) -m rethinking_jax.main --config=configs/quickstart.py --workdir=runs/quickstart

# ruff, the floors of the README's code map (import-linter's layers contract), then mypy over
# the engine and the models (pyproject.toml says all three's settings)
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
