# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

## demo: the main job, offline (no AWS account, no Pulumi CLI): a sandbox region-failure drill and its report
demo: $(STAMP)
	$(BIN)/drctl drill --sandbox

## bench: time each sandbox drill scenario and the offline plan (by hand; not part of the tests)
bench: $(STAMP)
	$(BIN)/python bench/bench_drill.py --all

## test: lint, then the whole suite
test: lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) out .drctl
