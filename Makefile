# captiondesk: `make run` to try it, `make test` to test it. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Extras installed for tests; CI adds gpu (torch CPU wheel + transformers) for the local-model tests.
TEST_EXTRAS ?= dev
RUN_EXTRAS ?= dev

export DATABASE_URL_TEST ?= postgres://postgres@127.0.0.1:5432/captiondesk
export REDIS_URL_TEST ?= redis://127.0.0.1:6379/15

.PHONY: run test venv lint typecheck bench-quick clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[$*]"
	touch $@

venv: $(VENV)/.installed-$(RUN_EXTRAS)

run: $(VENV)/.installed-$(RUN_EXTRAS)
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
