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
# The studio's browser tests drive Debian's chromium (installed below when missing; no browser
# download by Playwright). ROBUST_R1_SKIP_BROWSER=1 skips them knowingly.
CHROMIUM ?= $(or $(ROBUST_R1_CHROMIUM),/usr/bin/chromium)
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: demo test install bench clean browser

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[train,dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/robust-r1 demo

# Idempotent: nothing to do when the browser is there.
browser:
	@if [ "$$ROBUST_R1_SKIP_BROWSER" = 1 ] || [ -x "$(CHROMIUM)" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the studio's browser tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
	  echo "error: no Chromium at $(CHROMIUM) and no apt-get: install Chromium and set ROBUST_R1_CHROMIUM=/path/to/it," \
	       "or set ROBUST_R1_SKIP_BROWSER=1 to skip the browser tests" >&2; exit 1; \
	fi

test: $(STAMP) browser
	ROBUST_R1_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/degrade.py

clean:
	rm -rf $(VENV) demo-output studio-output build dist *.egg-info .pytest_cache .hypothesis
