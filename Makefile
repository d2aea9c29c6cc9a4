# The README's two commands: `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: demo test venv sync-check nbtest pytest readme clean-nbs bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## demo: install everything, then the quick run on the data folder (--data-dir rule: $CRYPTOFORECAST_DATA_DIR, else
## data/raw with price files, else the embedded sample): list and check the data, train BTC and ETH with the default
## models (naive, drift, LightGBM and their ensemble: plots, report, SHAP, MLflow run, a registered champion per coin),
## then forecast with the champions, so forecast, serve, monitor and the dashboard work next (the deep models are one
## flag away: cryptoforecast train --crypto BTC --models naive,drift,lightgbm,lstm)
DEMO_COINS ?= BTC,ETH
demo: $(STAMP)
	$(BIN)/cryptoforecast data list
	$(BIN)/cryptoforecast data check $(DEMO_COINS)
	$(BIN)/cryptoforecast train --crypto $(DEMO_COINS)
	$(BIN)/cryptoforecast forecast --crypto $(DEMO_COINS)
	@echo ""
	@echo "dashboard: $(BIN)/cryptoforecast dashboard   (then open http://127.0.0.1:8866)"
	@echo "daily:     $(BIN)/cryptoforecast forecast --crypto $(DEMO_COINS)   (serve, monitor, registry history --coin BTC)"
	@echo "commands:  $(BIN)/cryptoforecast --help       (or 'source $(BIN)/activate' once, then 'cryptoforecast ...')"

## sync-check: fail if nbdev-export or nbdev-clean would change the committed notebooks/package
sync-check: $(STAMP)
	@before=$$(find nbs cryptoforecast -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' | sort | xargs md5sum | md5sum); \
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean; \
	after=$$(find nbs cryptoforecast -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' | sort | xargs md5sum | md5sum); \
	if [ "$$before" != "$$after" ]; then echo "nbdev-export/nbdev-clean changed files: the notebooks and the package were not in sync (now fixed on disk; commit them)"; git status --short -- nbs cryptoforecast; exit 1; fi; \
	echo "notebooks and package in sync"

nbtest: $(STAMP)
	$(BIN)/nbdev-test --n-workers 2 --timing

pytest: $(STAMP)
	$(BIN)/python -m pytest -q --durations=80

## test: sync check, notebook tests, then pytest
test: sync-check nbtest pytest

## readme: regenerate README.md from nbs/index.ipynb (nbdev-readme needs Quarto)
readme: $(STAMP)
	$(BIN)/python tools/make_readme.py

bench: $(STAMP)
	$(BIN)/python benchmarks/data_load.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/skill.py
