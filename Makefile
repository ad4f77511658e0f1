# flipbot: every command a user or maintainer needs. Targets set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
OUT    ?= out/replay

.PHONY: help setup demo test test-all lint format typecheck bench soak chaos build clean

help:
	@echo "make demo       paper-trade the whole system on the bundled sample (no AWS, no keys)"
	@echo "make test       run the test suite (what CI runs)"
	@echo "make lint       ruff, cfn-lint on template.yaml and on its SAM-translated form"
	@echo "make typecheck  mypy on the shipped package"
	@echo "make bench      run every benchmark; results in bench/results/*.json"
	@echo "make soak       the long, slow test runs excluded from 'make test'"
	@echo "make chaos      200 seeded chaos replays (every scenario) and the invariants table"
	@echo "make build      sam build (installs aws-sam-cli in its own venv)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/flipbot replay --out $(OUT)

test: $(STAMP)
	$(BIN)/pytest -m "not slow" -n 2

test-all: $(STAMP)
	$(BIN)/pytest -n 2

soak: $(STAMP)
	$(BIN)/pytest -m slow

chaos: $(STAMP)
	$(BIN)/flipbot replay --chaos all --seeds 200 --out out/chaos

lint: $(STAMP)
	$(BIN)/ruff check shared functions tests tools bench
	$(BIN)/python tools/lint_template.py template.yaml

format: $(STAMP)
	$(BIN)/ruff format shared functions tests tools bench

typecheck: $(STAMP)
	$(BIN)/mypy shared/flipbot

bench: $(STAMP)
	$(BIN)/python -m bench

build: $(STAMP)
	test -x .sam-venv/bin/sam || ($(PYTHON) -m venv .sam-venv && .sam-venv/bin/pip install --quiet aws-sam-cli)
	.sam-venv/bin/sam build

clean:
	rm -rf $(VENV) .sam-venv .aws-sam out .pytest_cache .ruff_cache .mypy_cache
