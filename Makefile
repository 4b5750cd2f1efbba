# Điện Biên Phủ IOC backend. Run it: `make run`. Test it: `make test` (fast) / `make test-all` (what CI runs).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install system services run test test-all check bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

install: system $(VENV)/.installed  ## Debian packages (PostgreSQL 15, Mosquitto) + the Python environment

system:  ## install PostgreSQL 15 and Mosquitto from Debian when missing
	scripts/ensure-system.sh

services: system  ## make sure the local PostgreSQL server is running
	scripts/ensure-postgres.sh

run: install services  ## the simulated city end to end: broker, database, ingest, smoke fleet
	scripts/run-local.sh

test: install services  ## fast selection: unit + integration (real Mosquitto and PostgreSQL)
	$(PY) -m pytest

test-all: install services  ## everything, including the slow fault-injection tests
	$(PY) -m pytest -m ''

check: $(VENV)/.installed  ## lint and types
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install services  ## ingest drain rate vs raw binary COPY (prints figures)
	$(PY) -m bench.ingest_bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
