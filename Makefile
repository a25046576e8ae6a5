# One command runner for people and CI: every install step lives here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The jsii runtime under the CDK prints an end-of-life banner for Node 20; synth works and tests pass.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/$(BIN):$(PATH)
ENVIRONMENTS := dev prod

.PHONY: install jre local samples models lint typecheck unit synth checkov test bench bench-local bench-batch bench-async bench-chaos bench-publish clean

install: $(VENV)/.installed node_modules/.installed jre

$(VENV)/.installed: pyproject.toml requirements.txt requirements-dev.txt requirements-clients.txt requirements-real-stack.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The real-stack backend (Multi Model Server) needs a Java runtime; CI runs as root and installs one.
jre:
	@command -v java >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null; \
		else echo "warning: no java: the real-stack backend and its tests need a JRE (apt-get install default-jre-headless)"; fi; }

local: install  ## serve the dev endpoints on http://127.0.0.1:8080 (Ctrl-C stops); prints an AWS CLI example
	$(BIN)/creative-scoring serve --env $(or $(ENV),dev)

samples: install  ## score the sample creatives on every reference model, through the full handler chain
	$(BIN)/creative-scoring train samples

models: install  ## retrain the reference models and rewrite model_artifacts/ (reproducibility: docs/models.md)
	$(BIN)/creative-scoring train build

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

# checkov has its own virtual environment: its dependencies would move the project's pins.
CHECKOV := .venv-checkov/bin/checkov

$(CHECKOV): requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

checkov: synth $(CHECKOV)  ## checkov on the synthesized templates: every finding fixed, or skipped beside its resource with the reason
	$(CHECKOV) $$(for t in cdk.out/*/*.template.json; do printf -- '-f %s ' $$t; done) \
		--framework cloudformation --compact --quiet --skip-download

test: lint typecheck synth checkov unit

bench: install  ## handler-chain throughput and latency next to the raw forward pass (JSON on stdout)
	$(BIN)/python -m bench.handler_chain

bench-local: install  ## local endpoint: embedded backend vs Multi Model Server, with and without the front
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null
	$(BIN)/python -m bench.local_endpoint

bench-batch: install  ## local batch transform of 100,000 creatives (creatives/s) next to the bare handler chain
	$(BIN)/python -m bench.batch_transform

bench-publish: install  ## publish-to-first-answer on the local endpoint next to copying the archive and restarting
	$(BIN)/python -m bench.publish

bench-async: install  ## async end-to-end latency at queue depths 1, 16, 64 next to the real-time latency
	$(BIN)/python -m bench.async_inference

bench-chaos: install  ## async requests under SIGKILLs of the endpoint and its S3: accepted, completed, failed, lost, duplicated
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) .venv-checkov node_modules cdk.out .local-endpoint .mypy_cache .pytest_cache .ruff_cache
