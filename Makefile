# The two commands: `make run` (local stack) and `make test` (lint + suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint clean package bench

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing requirements-dev.txt into $(VENV) (about a minute the first time)..."
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -r requirements-dev.txt
	touch $@

run: $(STAMP)  ## serve the API on http://127.0.0.1:8000 with local backends
	$(BIN)/python -m tools.local_stack

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint  ## lint, then the whole suite against real local servers
	$(BIN)/python -m pytest

STAGE ?= prod
package: $(STAMP)  ## build/package/: the CloudFormation (SAM) template sam.json and deployment.zip for STAGE
	$(BIN)/python -m tools.package --stage $(STAGE) --out build/package

bench: $(STAMP)  ## print every performance figure against its target (see bench/RESULTS.md)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .local build .pytest_cache .ruff_cache
