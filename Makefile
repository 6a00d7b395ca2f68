# Linli. Two commands on a fresh clone: `make run` and `make test`.
# Everything installs into .venv (app, Python 3.11) and .venv-rasa (Rasa, Python 3.10);
# scripts/setup.sh is idempotent, so the targets below can call it every time.

.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON := .venv/bin/python
SETUP := bash scripts/setup.sh
PYTEST_ARGS ?=
# mypy fails on a directory without Python files, so only pass those that have some.
MYPY_DIRS := $(foreach d,records actions channels voice scripts bench,$(if $(wildcard $(d)/*.py),$(d)))

.PHONY: help setup model run test lint bench clean distclean

help: ## Show this help
	@printf 'Usage: make TARGET\n\n'
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'

setup: ## Install system packages, both venvs and .env (idempotent)
	$(SETUP) all

model: ## Train the Rasa model if its inputs changed (cached in bot/models/)
	$(SETUP) app rasa
	$(PYTHON) scripts/model.py

run: setup ## Start everything; Ctrl-C stops it
	RASA_MODEL=$$($(PYTHON) scripts/model.py) && export RASA_MODEL && $(PYTHON) scripts/run.py

test: ## Run the tests (PYTEST_ARGS="-k x" to select)
	$(SETUP) system app rasa env
	$(PYTHON) scripts/model.py
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: ## ruff and mypy
	$(SETUP) app
	.venv/bin/ruff check .
	.venv/bin/mypy $(MYPY_DIRS)

bench: setup ## Run every benchmark (record the results in docs/benchmarks.md)
	$(PYTHON) -m bench.records_bench
	$(PYTHON) scripts/model.py
	$(PYTHON) -m bench.nlu_bench
	$(PYTHON) -m bench.chat_bench
	$(PYTHON) -m bench.asr_bench
	$(PYTHON) -m bench.voice_turn_bench
	$(PYTHON) -m bench.phone_bench

clean: ## Remove var/ (local data) and .stamps/; keeps venvs, .env and the downloaded speech model
	[ ! -d var ] || find var -mindepth 1 -maxdepth 1 ! -name models -exec rm -rf {} +
	rm -rf .stamps

distclean: clean ## Also remove both venvs
	rm -rf .venv .venv-rasa
