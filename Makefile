# Two commands on a fresh machine: `make demo` and `make test` (each creates .venv first).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test lint lab clean

$(BIN)/incident: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

demo: $(BIN)/incident
	$(BIN)/incident demo

test: $(BIN)/incident
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(BIN)/incident
	$(BIN)/ruff check .

clean:
	rm -rf runs/*/ runs/.data .pytest_cache
