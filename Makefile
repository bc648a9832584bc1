# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ENGINE := .engine/bin
ENGINE_MODULE := tools/pulumi-engine
POLICY_VENV := policy/venv
POLICY_STAMP := $(POLICY_VENV)/.installed-stamp

.PHONY: install demo test lint bench clean engine policy-venv

install: $(STAMP) $(POLICY_STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

## policy-venv: the policy pack's own virtualenv. `pulumi preview/up --policy-pack policy` (CI's and drctl's)
## never install it and hang without it (catalogue: pulumi-cli.policy-pack-needs-its-virtualenv); CI builds
## it from policy/requirements.lock (.github/actions/setup).
policy-venv: $(POLICY_STAMP)

$(POLICY_STAMP): policy/requirements.txt
	$(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/pip install --quiet --upgrade pip
	$(POLICY_VENV)/bin/pip install --quiet -r policy/requirements.txt
	$(POLICY_VENV)/bin/python -c 'import pulumi_policy'
	touch $@

## demo: the main job, offline (no AWS account, no Pulumi CLI): a sandbox region-failure drill and its report
demo: $(STAMP)
	$(BIN)/drctl drill --sandbox

## bench: time each sandbox drill scenario and the offline plan (by hand; not part of the tests)
bench: $(STAMP)
	$(BIN)/python bench/bench_drill.py --all

## test: lint, then the whole suite; the `engine` tests run when an engine is there (make engine) and say so
test: lint
	@for tool in promtool actionlint; do command -v $$tool >/dev/null || \
	  echo "note: $$tool is not installed, so its tests are skipped (.ci/run installs it)"; done
	$(BIN)/python -m pytest

## engine: the Pulumi CLI built from its Go modules, with its Python shims, into .engine/bin (cached: seconds)
engine: $(ENGINE)/pulumi

$(ENGINE)/pulumi: $(ENGINE_MODULE)/go.mod $(ENGINE_MODULE)/go.sum $(ENGINE_MODULE)/build.sh
	$(ENGINE_MODULE)/build.sh $(ENGINE)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(POLICY_VENV) out .drctl .engine
