# The README's two commands: `make run` (the pipeline on HAPT) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HAR_DATA_MIRROR ?= $(abspath ../shared/datasets)
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export MLFLOW_ENABLE_TELEMETRY := false

.PHONY: setup run test lint bench clean

$(BIN)/har: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned, so pip takes the CPU wheel and never a CUDA build
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev,ml,flows,serve]"
	touch $(BIN)/har

setup: $(BIN)/har

run: setup
	$(BIN)/har run

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python benchmarks/preprocess.py

clean:
	rm -rf data/raw data/interim data/processed reports
