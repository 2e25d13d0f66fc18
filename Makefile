# Two commands for a fresh machine with Python 3.11:
#   make run    set up .venv, build the models (if absent) and serve them on 127.0.0.1:5000
#   make test   set up .venv with the test tools and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test models clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

lib/models/binary/manifest.json: | $(VENV)/.runtime
	$(BIN)/python build_model.py

models: $(VENV)/.runtime
	$(BIN)/python build_model.py

run: $(VENV)/.runtime lib/models/binary/manifest.json
	$(BIN)/gunicorn app:app

test: $(VENV)/.dev
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) lib/models .pytest_cache .hypothesis
