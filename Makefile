# Intelligent Workflows: `make up` runs the platform, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up down status restart test lint typecheck importlint unit integration e2e bench clean install system-packages

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Debian packages the stack and the tests use; installed only when running as root on Debian.
system-packages:
	@scripts/system-packages.sh

up: install system-packages
	@scripts/stack.sh up

down:
	@scripts/stack.sh down

status:
	@scripts/stack.sh status

restart: down up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy api engine models tasks workers monitoring

importlint: install
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -q tests/unit

integration: install
	$(BIN)/pytest -q tests/integration

e2e: install system-packages
	$(BIN)/pytest -q tests/e2e

test: install system-packages lint typecheck importlint
	$(BIN)/pytest -q -p no:cacheprovider tests

bench: install system-packages
	$(BIN)/python bench/engine.py

clean: down
	rm -rf var $(VENV) *.egg-info
