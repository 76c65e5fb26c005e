# captiondesk: `make run` to try it, `make test` to test it. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Extras installed for tests; CI adds gpu (torch CPU wheel + transformers) for the local-model tests.
TEST_EXTRAS ?= dev
# `make run` needs none of the dev tools; RUN_EXTRAS=gpu adds local models.
RUN_EXTRAS ?=
RUN_SPEC := $(if $(strip $(RUN_EXTRAS)),.[$(RUN_EXTRAS)],.)

export DATABASE_URL_TEST ?= postgres://postgres@127.0.0.1:5432/captiondesk
export REDIS_URL_TEST ?= redis://127.0.0.1:6379/15

.PHONY: run test venv lint typecheck bench-quick clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[$*]"
	touch $@

# A first run shows pip's progress: it is the one slow step (about a minute on a fresh machine).
$(VENV)/.installed-run-$(RUN_EXTRAS): pyproject.toml | $(VENV)/bin/python
	@echo "Installing what captiondesk needs to run (first run only)..."
	$(PY) -m pip install --progress-bar on --no-input -e "$(RUN_SPEC)"
	touch $@

venv: $(VENV)/.installed-run-$(RUN_EXTRAS)

run: $(VENV)/.installed-run-$(RUN_EXTRAS)
	$(PY) -m captiondesk.run

test: $(VENV)/.installed-$(TEST_EXTRAS)
	DATABASE_URL="$${DATABASE_URL:-$$DATABASE_URL_TEST}" REDIS_URL="$${REDIS_URL:-$$REDIS_URL_TEST}" \
		$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m ruff check .

typecheck: $(VENV)/.installed-$(TEST_EXTRAS)
	DEBUG=1 $(PY) -m mypy routing/providers routing/policy.py

bench-quick: $(VENV)/.installed-$(TEST_EXTRAS)
	export DATABASE_URL="$${DATABASE_URL:-$$DATABASE_URL_TEST}" REDIS_URL="$${REDIS_URL:-$$REDIS_URL_TEST}"; \
	for b in benchmarks/[a-z]*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) var/broker
