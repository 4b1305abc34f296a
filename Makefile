# The two entry points of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= scenarios/small_city.yaml

.PHONY: run test test-fast coverage lint bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the package definition changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/chargetwin run $(SCENARIO)

# The whole suite, slow tests included, after the lint gates (formatting, ruff, mypy): several minutes.
test: lint
	$(BIN)/python -m pytest

# Everything but the tests marked slow: unit, property, closed-form and KPI tests, one scenario end to end,
# short OCPP 1.6 and 2.0.1 loopback exchanges, bad input, scenario validation; Hypothesis tests with the
# `fast` profile's few examples. The slow ones: paced and bridged CSMS runs, fault injection, conformance,
# chaos, OpenADR, sweeps and Dask, notebooks, the docs build, every other scenario end to end, multi-day
# runs (docs/development.md lists them). Spread over the cores by pytest-xdist, a test file per worker at
# a time (module fixtures run once): 65-90 s of CPU; TEST_WORKERS=0 runs it in one process, about 60 s of
# CPU. Wall on a quiet 2-core machine: about 50 s; shared with other work (load 3-5) both took about
# 105 s (medians).
TEST_WORKERS ?= auto
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" --hypothesis-profile=fast -n $(TEST_WORKERS) --dist loadfile

# Line coverage of the packages, with the lines no test runs.
coverage: $(VENV)/.installed-dev
	$(BIN)/python -m pytest --cov=sim --cov=virtual_chargers --cov=reports --cov-report=term-missing

lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.installed
	$(BIN)/python bench/throughput.py

# The documentation site (MkDocs, Material theme) in site/; `$(BIN)/mkdocs serve` previews it.
docs: $(VENV)/.installed-dev
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) out site .pytest_cache .hypothesis
