# syntax=docker/dockerfile:1.7
# HTTP serving image: `har serve` (FastAPI + ONNX Runtime) loading serve.model_uri from MLflow.
# Build from the repository root:  docker build -f infra/docker/api.Dockerfile -t har-api:local .
# (BuildKit reads api.Dockerfile.dockerignore next to this file.)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GX_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    DVC_NO_ANALYTICS=1 \
    MLFLOW_ENABLE_TELEMETRY=false \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

WORKDIR /app

# torch first, pinned, from the CPU index: pip then never pulls a CUDA build for the `ml` extra.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

# Dependencies in their own layer (a stub package stands in for the code), so editing har/ does not
# reinstall them. The `api` extra in pyproject.toml is this image's whole install set.
COPY pyproject.toml README.md ./
RUN mkdir har && touch har/__init__.py \
    && pip install ".[api]" \
    && rm -rf har

COPY har ./har
COPY params.yaml ./
RUN pip install --no-deps --force-reinstall . \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/har har \
    && mkdir -p /app/data/inference_log \
    && chown -R har:har /app/data

USER har
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["har", "serve", "--host", "0.0.0.0", "--port", "8000"]
