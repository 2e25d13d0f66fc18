# Two commands for a fresh machine with Python 3.11:
#   make run    set up .venv, build the models (if absent) and serve them on 127.0.0.1:5000
#   make test   set up .venv with the test tools, lint, and run the whole test suite
#   make test-fast  lint and the inner loop: every test but the end-to-end ones (about a minute)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint models clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-storage.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

lib/models/binary/manifest.json: | $(VENV)/.runtime
	$(BIN)/python build_model.py

models: $(VENV)/.runtime
	$(BIN)/python build_model.py

run: $(VENV)/.runtime lib/models/binary/manifest.json
	$(BIN)/gunicorn app:app

lint: $(VENV)/.dev
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

test-fast: lint
	$(BIN)/python -m pytest -m "not e2e"

clean:
	rm -rf $(VENV) lib/models .pytest_cache .hypothesis
