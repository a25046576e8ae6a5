# One command runner for people and CI: every install step lives here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The jsii runtime under the CDK prints an end-of-life banner for Node 20; synth works and tests pass.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/$(BIN):$(PATH)
ENVIRONMENTS := dev prod

.PHONY: install local models lint typecheck unit synth test bench clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
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

synth: install  ## npx cdk synth of every environment (cdk-nag runs inside), then cfn-lint on the templates
	@for env in $(ENVIRONMENTS); do \
		echo "cdk synth -c env=$$env"; \
		npx cdk synth --quiet -c env=$$env -o cdk.out/$$env || exit 1; \
	done
	$(BIN)/cfn-lint -- cdk.out/*/*.template.json

test: lint typecheck synth unit

bench: install  ## handler-chain throughput and latency next to the raw forward pass (JSON on stdout)
	$(BIN)/python -m bench.handler_chain

clean:
	rm -rf $(VENV) node_modules cdk.out .mypy_cache .pytest_cache .ruff_cache
