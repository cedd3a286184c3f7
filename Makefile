# Two commands on a fresh machine: `make demo` and `make test` (each creates .venv first).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PIP = $(BIN)/pip install -q --disable-pip-version-check

.PHONY: demo test lint lab clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	@touch $@

$(VENV)/.test: $(VENV)/.base
	$(PIP) -e '.[test]'
	@touch $@

$(VENV)/.lab: $(VENV)/.base
	$(PIP) -e '.[lab]'
	@touch $@

demo: $(VENV)/.base
	$(BIN)/incident demo

# tests: two worker processes (pytest-xdist); notebook runs and servers dominate the suite
test: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/deptry incident_lib
	$(BIN)/python -m pytest -q -n 2

lint: $(VENV)/.test
	$(BIN)/ruff check .

lab: $(VENV)/.lab
	$(BIN)/incident lab

clean:
	rm -rf runs/*/ runs/.data .pytest_cache
