# flipbot: every command a user or maintainer needs. Targets set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml dev/pyproject.toml | cksum | cut -d' ' -f1)
OUT    ?= out/replay
# make deploy: the stack name, its region (one Binance serves: not the US; see README),
# extra template parameters ("Key=Value ..."), RECOVER=1 when the account already holds
# the base asset, DRY_RUN=1 to print the commands only.
STACK  ?= flipbot
REGION ?= ap-northeast-1
PARAMS ?=

# Tools whose pins clash with the project's (checkov pins boto3 1.35) live in their own venvs.
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP   := .checkov-venv/.installed-$(CHECKOV_VERSION)
SAM_CLI_VERSION := 1.170.0
SAM_STAMP       := .sam-venv/.installed-$(SAM_CLI_VERSION)
# sam build runs pip for the functions' runtime, python3.12: the first one found.
PY312 := $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 \
	/usr/local/bin/python3.12 /usr/bin/python3.12; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null \
	&& { command -v "$$p"; break; }; done)

.PHONY: help setup demo test test-all lint format typecheck bench soak chaos build deploy clean

help:
	@echo "make demo       paper-trade the whole system on the bundled sample (no AWS, no keys)"
	@echo "make test       run the test suite (what CI runs)"
	@echo "make lint       ruff, cfn-lint on template.yaml and on its SAM-translated form, checkov"
	@echo "make typecheck  mypy (strict) on the runtime and development packages and the handlers"
	@echo "make bench      run every benchmark; results in bench/results/*.json"
	@echo "make soak       the long, slow test runs excluded from 'make test'"
	@echo "make chaos      200 seeded chaos replays (every scenario) and the invariants table"
	@echo "make build      sam build for arm64, no container (aws-sam-cli in its own venv; needs python3.12)"
	@echo "make deploy     image, stack, secrets, listener, first cycle (DRY_RUN=1 prints the commands)"

$(STAMP): pyproject.toml dev/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The runtime package (what ships) and the development package (twin, paper exchange,
	# command line, test tools) that depends on it.
	$(BIN)/pip install --quiet -e '.[lambda,listener]' -e './dev[test]'
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

$(CHECKOV_STAMP):
	rm -rf .checkov-venv && $(PYTHON) -m venv .checkov-venv
	.checkov-venv/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

lint: $(STAMP) $(CHECKOV_STAMP) $(SAM_STAMP)
	$(BIN)/ruff check shared dev functions tests tools bench
	$(BIN)/python tools/lint_template.py template.yaml
	SAM_CLI_TELEMETRY=0 .sam-venv/bin/sam validate --lint --template template.yaml --region us-east-1
	.checkov-venv/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

format: $(STAMP)
	$(BIN)/ruff format shared dev functions tests tools bench

typecheck: $(STAMP)
	$(BIN)/mypy shared/flipbot dev/flipbot_dev
	# every handler is a module named app: one run each (strict, as configured)
	for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done

bench: $(STAMP)
	$(BIN)/python -m bench

$(SAM_STAMP):
	rm -rf .sam-venv && $(PYTHON) -m venv .sam-venv
	.sam-venv/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

# Then precompile every module for python3.12: the layers are read-only in Lambda, so
# without .pyc files each cold start compiles what it imports.
build: $(SAM_STAMP)
	@test -n "$(PY312)" || { echo "make build: no python3.12 found (the functions' runtime);" \
		"install one, or run .sam-venv/bin/sam build --use-container"; exit 1; }
	PATH="$(dir $(PY312)):$$PATH" SAM_CLI_TELEMETRY=0 .sam-venv/bin/sam build
	$(PY312) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build

# The real run installs aws-sam-cli first; the dry run needs nothing and calls nothing.
deploy: $(if $(DRY_RUN),,$(SAM_STAMP))
	@$(PYTHON) tools/deploy.py --stack "$(STACK)" --region "$(REGION)" --params "$(PARAMS)" \
		--sam .sam-venv/bin/sam $(if $(RECOVER),--recover) \
		$(if $(BUILD_IN_CONTAINER),--build-in-container) $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(VENV) .sam-venv .checkov-venv .aws-sam out .pytest_cache .ruff_cache .mypy_cache
