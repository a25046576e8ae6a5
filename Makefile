# One command runner for people and CI: every install step lives here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install local models lint typecheck unit test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

local: install  ## score the sample creatives on every reference model, through the full handler chain
	$(BIN)/python -m training score

models: install  ## retrain the reference models and rewrite model_artifacts/ (deterministic)
	$(BIN)/python -m training build

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: lint typecheck unit

bench: install  ## handler-chain throughput and latency next to the raw forward pass (JSON on stdout)
	$(BIN)/python -m bench.handler_chain

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
