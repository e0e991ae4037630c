# streamchaos — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/passthrough.yaml
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,plot]'
	touch $@

install: $(VENV)/.installed ## create .venv with streamchaos and the dev tools

up: ## start local Kafka + Schema Registry on 127.0.0.1 (no Docker); writes .local/stack.env
	scripts/stack.sh up

down: ## stop what `make up` started
	scripts/stack.sh down

test: install ## run every test against real services (starts and stops the stack and the container engine if needed)
	scripts/ensure-prometheus.sh
	scripts/with-containers.sh scripts/with-stack.sh $(PY) -m pytest -q -p no:cacheprovider --durations=15 $(PYTEST_ARGS)

docs: install ## rewrite README.md's generated fault table from the fault classes
	env -u STREAMCHAOS_FAULT_PACKAGES $(PY) -m streamchaos faults --readme README.md

lint: install ## ruff check, ruff format --check, mypy (--strict on the bridge and the engine)
	$(VENV)/bin/ruff check streamchaos tests benchmarks scripts
	$(VENV)/bin/ruff format --check streamchaos tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict streamchaos/bridge streamchaos/engine

run: install ## run the bridge with CONFIG (default configs/passthrough.yaml) on the local stack
	scripts/with-stack.sh $(VENV)/bin/streamchaos run -c $(CONFIG)

bench: install ## throughput of the bridge as a ratio to a plain confluent-kafka passthrough
	scripts/with-stack.sh $(PY) -m benchmarks.run

demo: install ## the main job end to end on the local stack
	scripts/with-stack.sh $(PY) scripts/demo.py

.PHONY: help install up down test lint docs run bench demo
