# The README's two commands: `make run` (the pipeline on HAPT) and `make test`.
PY ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VENV ?= .venv
BIN := $(VENV)/bin
export HAR_DATA_MIRROR ?= $(abspath ../shared/datasets)
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export MLFLOW_ENABLE_TELEMETRY := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90

.PHONY: setup system-deps run test stack stack-down dag lint bench clean

$(BIN)/har: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned, so pip takes the CPU wheel and never a CUDA build
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev,stack]"
	touch $(BIN)/har

setup: $(BIN)/har

# Debian packages the stack and its tests run: PostgreSQL 15 (har stack) and Chromium (UI checks).
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

# the whole pipeline through DVC: data → validated windows → model → ONNX → registered champion
run: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

test: setup system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q

# The deployed stack on this machine (docs/deploy.md): PostgreSQL, S3, MLflow, Prefect + worker, API
stack: setup system-deps
	$(BIN)/har stack up
	env $$($(BIN)/har stack env | sed 's/^export //') $(BIN)/har pipeline deploy

stack-down: setup
	$(BIN)/har stack down

# the pipeline diagram in docs/architecture.md, from dvc.yaml
dag: setup
	$(BIN)/python docs/tools/render_dag.py

bench: setup
	$(BIN)/python benchmarks/preprocess.py
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/serve_load.py
	$(BIN)/python benchmarks/orchestration.py
	$(BIN)/python benchmarks/quality.py   # long: every model, 10 subject folds

clean:
	rm -rf data/raw data/interim data/processed reports models mlartifacts mlflow.db
