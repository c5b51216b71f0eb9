# Two commands do all set-up on a fresh machine:
#   make demo   - the main job on the embedded default (bundled photos)
#   make test   - the test suite
# Both create or refresh .venv (re-installed when pyproject.toml changes).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= 2
# Pinned so pip takes the local wheel instead of pulling GBs of CUDA packages; a CUDA build that
# also runs on the CPU. The train extra's bounds keep unsloth 2026.10.x installable next to it.
TORCH  ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[train,dev]"
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
