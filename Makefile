# Pipelines — `make help` lists the targets.
SHELL := bash
.DEFAULT_GOAL := help
PY := .venv/bin/python

.PHONY: help setup demo up down status deals test test-fast lint fmt catalogs schemas lock bench fuzz

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## install everything: Java, Maven, PostgreSQL, Kafka's jars, the test OpenID Provider (npm), Prometheus, the Python environment
	scripts/stack setup
	scripts/python-env

demo: setup ## fresh machine: install everything, start the stack and every service, load a year of history, drive a simulation
	.venv/bin/pipelines demo --leads $${LEADS:-60} --rate $${RATE:-4}

up: setup ## set up, then start Kafka and PostgreSQL and print their endpoints
	scripts/stack up

down: ## stop the services and the local stack (data kept; `scripts/stack down --wipe` deletes it)
	-[ -x .venv/bin/pipelines ] && .venv/bin/pipelines services down
	scripts/stack down

status: ## what runs, with pids and ports
	scripts/stack status

deals: up ## run the deals service (api, relay, projector in one process) on the local stack
	eval "$$(scripts/stack env)" && .venv/bin/python -m services.deals all

# Suites that mostly wait on servers and share nothing run on two workers (each test has its own schema and topics;
# a module stays on one worker); the end-to-end and fault suites start processes or stop the servers: alone.
PARALLEL := tests/unit tests/contract tests/integration tests/deploy tests/bench
ALONE := tests/e2e tests/faults

# The secure stack (SASL/SCRAM and ACLs) that the ACL test (parallel) and the secure end-to-end run (alone) share: the
# first test that needs it starts it in this run dir, and it is wiped once both phases are done (testkit/secure.py).
SECURE_RUN := $(CURDIR)/.run-secure

test: setup lint ## set up, lint, then run every test against real Kafka and PostgreSQL (no skips allowed)
	export PIPELINES_FAIL_ON_SKIP=1 PIPELINES_SECURE_RUN_DIR=$(SECURE_RUN); \
	trap 'scripts/stack --run-dir $(SECURE_RUN) down --wipe' EXIT; \
	.venv/bin/pytest -n 2 --dist loadfile $(PARALLEL) && .venv/bin/pytest $(ALONE)

test-fast: ## unit tests only, no servers
	.venv/bin/pytest -m "not pg and not kafka and not e2e"

lint: ## ruff, mypy (strict), import contracts
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/python -m tools.contract check

catalogs: ## extract the board's texts again into services/web/locale/*/messages.po (then translate what vi lacks)
	$(PY) -m services.web.i18n extract

fmt: ## format and autofix
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

fuzz: setup ## schemathesis over every API as every role, longer than CI's and with a new seed (decision 0029)
	PIPELINES_FUZZ_EXAMPLES=$${PIPELINES_FUZZ_EXAMPLES:-25} PIPELINES_FUZZ_SCENARIOS=$${PIPELINES_FUZZ_SCENARIOS:-60} \
	PIPELINES_FUZZ_STEPS=$${PIPELINES_FUZZ_STEPS:-12} PIPELINES_FUZZ_SEED=$${PIPELINES_FUZZ_SEED:-random} \
	.venv/bin/pytest -p no:randomly -s tests/unit/test_fuzz_apps.py tests/integration/test_api_fuzz.py

bench: setup ## run every benchmark beside its baseline on the real servers; tables printed, results in bench/results
	.venv/bin/python -m bench $(BENCH)

schemas: ## write the JSON Schema of new event types and versions under docs/events
	.venv/bin/python -m tools.contract write

lock: ## update uv.lock after changing pyproject.toml
	UV_CACHE_DIR=.cache/uv .cache/uv-venv/bin/uv lock
