# One entry point for everything: each target sets up what it needs.
#   make cluster   run the main job (see README)
#   make test      ruff, mypy --strict, pytest and trial: the whole suite
#   make simulate  the same ordering, simulated in one process from a seed
#   make docs      the documentation site, in docs/_build/html
#   make bench     the benchmarks (in .venv-bench, with PySyncObj and matplotlib)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

.PHONY: setup browser cluster simulate docs test lint typecheck pytest trial bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]' --config-settings editable_mode=compat
	touch $@

# The benchmark's own environment: PySyncObj, matplotlib and pyinstrument
# stay out of the one the tests run in.
$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]' --config-settings editable_mode=compat
	touch $@

# Headless Chromium for the status page's browser test (Debian's packages),
# installed when missing; the suite then requires it rather than skip it.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium chromium-driver >/dev/null; }

cluster: $(STAMP)
	$(BIN)/python -m isis_twisted.tools.localcluster --nodes 3 --messages 20

simulate: $(STAMP)
	$(BIN)/python -m isis_twisted.tools.simulation --nodes 3 --messages 12 --seed 1 --show

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) browser
	ISIS_REQUIRE_BROWSER=1 $(BIN)/pytest -q

trial: $(STAMP) browser
	ISIS_REQUIRE_BROWSER=1 $(BIN)/python -m twisted.trial tests

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

test: lint typecheck docs trial pytest

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/engine_bench.py
	$(BENCH_VENV)/bin/python bench/wire_bench.py
	$(BENCH_VENV)/bin/python bench/suite.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) docs/_build docs/_generated build dist *.egg-info _trial_temp* tests.*/ .mypy_cache .ruff_cache .hypothesis
