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

.PHONY: setup system-deps run test stack stack-down dag lint bench clean notebooks docs docs-serve \
	ci-report mlflow-ui prefect-ui data-docs plots

$(BIN)/har: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned, so pip takes the CPU wheel and never a CUDA build
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev,stack]"
	touch $(BIN)/har

setup: $(BIN)/har

# Debian packages the stack and its tests run: PostgreSQL 15 (har stack), Chromium (UI checks) and
# Graphviz (the docs site draws its diagrams with dot, offline).
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
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

# a params.yaml value by dotted key (params.yaml is the one source of configuration)
param = $$($(BIN)/python -c "import functools; from har.config import load_params; \
	print(functools.reduce(lambda d, k: d[k], '$(1)'.split('.'), load_params().model_dump(mode='json', by_alias=True)))")

# The notebooks (notebooks/*/*.py, jupytext percent scripts): paired .ipynb made and executed in place.
# HAR_NB_SUBJECTS=1,2,3 runs them on a subset (what the test suite does).
notebooks: setup
	$(BIN)/jupytext --sync notebooks/*/*.py
	cd notebooks && PATH="$(abspath $(BIN)):$$PATH" $(abspath $(BIN))/pytest -q -p no:cacheprovider \
		--nbmake --overwrite --nbmake-timeout=1800 -o testpaths=. -o addopts= .

# The documentation site (mkdocs.yml): `make docs` builds site/ strictly, `make docs-serve` serves it.
DOCS_PORT ?= 8001
docs: setup system-deps
	$(BIN)/mkdocs build --strict

docs-serve: setup system-deps
	$(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:$(DOCS_PORT)

# The CI pipeline check's report (.github/workflows/ci.yml): dvc repro on the ci.overrides subset for
# the base and this commit, metrics/params diff, the promotion gate's dry-run verdict, as markdown.
CI_BASE ?= main
CI_REPORT_OUT ?=
ci-report: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python .ci/pipeline_report.py --base $(CI_BASE) \
		$(if $(CI_REPORT_OUT),--out $(CI_REPORT_OUT))

# One command per UI. Each reads params.yaml; with the stack's environment (MLFLOW_TRACKING_URI,
# PREFECT_API_URL set by `eval "$$(har stack env)"`) it points at the running servers instead.
MLFLOW_UI_PORT ?= 5000
PREFECT_UI_PORT ?= 4200
DATA_DOCS_PORT ?= 8081
mlflow-ui: setup
	@uri="$(call param,tracking.uri)"; uri="$${MLFLOW_TRACKING_URI:-$$uri}"; \
	case "$$uri" in http*) echo "MLflow runs on a server: open $$uri"; exit 0;; esac; \
	echo "MLflow UI for $$uri on http://127.0.0.1:$(MLFLOW_UI_PORT) (Ctrl-C stops)"; \
	$(BIN)/mlflow ui --backend-store-uri "$$uri" --host 127.0.0.1 --port $(MLFLOW_UI_PORT)

# Past runs included: `har pipeline run` without a server keeps its runs in $$PREFECT_HOME's database,
# which this server opens.
prefect-ui: setup
	@if [ -n "$$PREFECT_API_URL" ]; then echo "Prefect runs on a server: open $${PREFECT_API_URL%/api}"; exit 0; fi; \
	echo "Prefect UI on http://127.0.0.1:$(PREFECT_UI_PORT) (Ctrl-C stops)"; \
	PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_UI_PORT)/api \
		$(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_UI_PORT)

data-docs: setup
	@dir="$(call param,validate.docs_dir)"; \
	test -f "$$dir/index.html" || { echo "no Data Docs in $$dir yet: make run (or har validate) writes them"; exit 1; }; \
	echo "Great Expectations Data Docs on http://127.0.0.1:$(DATA_DOCS_PORT)/index.html (Ctrl-C stops)"; \
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory "$$dir" $(DATA_DOCS_PORT)

# dvc.yaml's plots (training curves, confusion matrix, per-class F1) as dvc_plots/index.html, with the
# charting libraries inlined so the page also renders offline (plain `dvc plots show` loads them from a CDN)
plots: setup
	$(BIN)/python docs/tools/offline_plots.py

bench: setup
	$(BIN)/python benchmarks/preprocess.py
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/serve_load.py
	$(BIN)/python benchmarks/orchestration.py
	$(BIN)/python benchmarks/quality.py   # long: every model, 10 subject folds

clean:
	rm -rf data/raw data/interim data/processed reports models mlartifacts mlflow.db site dvc_plots
