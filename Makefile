# Runboard: `make run` for the demo, `make test` for the suite.
# Django 6 needs Python 3.12+: we look for one ourselves (PATH, then pyenv's
# versions), since `python3` is often older. Set PYTHON=/path/to/python to choose.

VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
RUNTIME_PORT ?= 8765

PYTHON ?= $(shell \
  for p in python3.13 python3.12 python3 $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do \
    if [ -x "$$(command -v $$p 2>/dev/null)" ] && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
      command -v $$p; break; \
    fi; \
  done)

.PHONY: run test lint format worker scheduler runtime clean help

help:
	@echo "make run    - set up everything and serve the demo on http://$(HOST):$(PORT)"
	@echo "             (with a queue worker, the scheduler and the demo runtime; Ctrl-C stops all)"
	@echo "make test   - run the whole test suite (SQLite, or DATABASE_URL=postgres://...)"
	@echo "make lint   - ruff check and ruff format --check"

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "Runboard needs Python 3.12 or newer (Django 6 does), and none was found."; \
	  echo "Install one (e.g. python3.12) or run: make run PYTHON=/path/to/python3.12"; \
	  exit 1; \
	fi
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 WEBHOOK_ALLOWED_TARGETS=$(HOST) $(BIN)/python manage.py runboard_dev --addr $(HOST):$(PORT) --runtime-port $(RUNTIME_PORT)

# The pieces `make run` starts, one at a time (README: how production runs them).
worker: $(VENV)/.installed
	DEBUG=1 WEBHOOK_ALLOWED_TARGETS=$(HOST) $(BIN)/python manage.py db_worker

scheduler: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py runboard_scheduler

runtime: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py demo_runtime --port $(RUNTIME_PORT) --api-url http://$(HOST):$(PORT)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .test-media .pytest_cache
