# The README's two commands: `make run` (the pipeline on HAPT) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HAR_DATA_MIRROR ?= $(abspath ../shared/datasets)
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export MLFLOW_ENABLE_TELEMETRY := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90

.PHONY: setup run test lint bench clean

$(BIN)/har: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned, so pip takes the CPU wheel and never a CUDA build
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev,ml,flows,serve]"
	touch $(BIN)/har

setup: $(BIN)/har

# the whole pipeline through DVC: data → validated windows → model → ONNX → registered champion
run: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python benchmarks/preprocess.py
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/serve_load.py
	$(BIN)/python benchmarks/orchestration.py
	$(BIN)/python benchmarks/quality.py   # long: every model, 10 subject folds

clean:
	rm -rf data/raw data/interim data/processed reports models mlartifacts mlflow.db
