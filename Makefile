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

# The web console is built when Node is there (the API serves web/dist at /).
WEB_BUILD := $(if $(shell command -v npm 2>/dev/null),web-build)
up: install system-packages $(WEB_BUILD)
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
	$(BIN)/mypy api engine models tasks workers monitoring cli

importlint: install
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -q tests/unit

integration: install
	$(BIN)/pytest -q tests/integration

e2e: install system-packages
	$(BIN)/pytest -q tests/e2e

# web-test's browser e2e then runs inside the pytest run below (tests/e2e/web), not twice.
test: WEB_E2E := pytest
test: install system-packages lint typecheck importlint web-test
	$(BIN)/pytest -q -p no:cacheprovider tests

.PHONY: web-build web-test
# The web console (web/, see README "Web console"): npm ci from the lock file, type check, vite build.
web-build:
	@scripts/web.sh build

# Vitest component tests, the build, then the browser e2e (tests/e2e/web) in headless Chromium.
web-test: install
	@WEB_E2E=$(WEB_E2E) scripts/web.sh test

bench: install system-packages
	$(BIN)/python bench/engine.py

clean: down
	rm -rf var $(VENV) *.egg-info
