# ledgerdrill: `make gameday` runs the drill suite on the embedded sandbox; `make test` runs
# the harness's own tests. Both create .venv and install the package on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ledgerdrill-installed

.PHONY: test lint typecheck unit gameday plan cleanup clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

gameday: $(STAMP)
	$(BIN)/ledgerdrill gameday --target targets/sandbox.yaml

plan: $(STAMP)
	$(BIN)/ledgerdrill plan --target targets/sandbox.yaml

cleanup: $(STAMP)
	$(BIN)/ledgerdrill cleanup

clean:
	rm -rf $(VENV) .ledgerdrill .pytest_cache .mypy_cache .ruff_cache
