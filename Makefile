# Two commands from a fresh clone (only Python 3.11 + pip needed):
#   make test   -> creates .venv, installs the package with its test extra, runs the tests
#   make demo   -> creates .venv, trains the offline quickstart, writes runs/quickstart/report.md
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

.PHONY: install test demo lint
install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest -q

demo: $(VENV)/.installed
	$(PY) -m rethinking_jax.main --config=configs/quickstart.py --workdir=runs/quickstart

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
