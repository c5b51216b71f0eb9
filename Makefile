# Two commands do all set-up on a fresh machine:
#   make demo   - the main job on the embedded default (bundled photos)
#   make test   - the test suite
# Both create or refresh .venv (re-installed when pyproject.toml changes).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/robust-r1 demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/degrade.py

clean:
	rm -rf $(VENV) demo-output build dist *.egg-info .pytest_cache .hypothesis
