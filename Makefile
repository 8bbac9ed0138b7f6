# Pipelines — `make help` lists the targets.
SHELL := bash
.DEFAULT_GOAL := help
PY := .venv/bin/python

.PHONY: help setup up down status test test-fast lint fmt

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## install everything: Java, Maven, PostgreSQL, Kafka's jars, the Python environment
	scripts/stack setup
	scripts/python-env

up: setup ## set up, then start Kafka and PostgreSQL and print their endpoints
	scripts/stack up

down: ## stop the local stack (data kept; `scripts/stack down --wipe` deletes it)
	scripts/stack down

status: ## what runs, with pids and ports
	scripts/stack status

test: setup lint ## set up, lint, then run every test against real Kafka and PostgreSQL (no skips allowed)
	PIPELINES_FAIL_ON_SKIP=1 .venv/bin/pytest

test-fast: ## unit tests only, no servers
	.venv/bin/pytest -m "not pg and not kafka and not e2e"

lint: ## ruff, mypy (strict), import contracts
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports

fmt: ## format and autofix
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .
