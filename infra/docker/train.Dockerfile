# syntax=docker/dockerfile:1.7
# Training / orchestration image: `har` (data, train, evaluate, export, register, promote), DVC with the
# S3 remote, Prefect (server, worker, `har pipeline serve`) and the MLflow tracking server
# (psycopg2 for PostgreSQL, boto3 for S3 artifacts) -- one image so every version matches pyproject.toml.
# Build from the repository root:  docker build -f infra/docker/train.Dockerfile -t har-train:local .
# (BuildKit reads train.Dockerfile.dockerignore next to this file.)
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

# Dependencies in their own layer (a stub package stands in for the code). The `train` extra in
# pyproject.toml is this image's whole install set (incl. psycopg2/boto3 for the MLflow server, asyncpg
# for the Prefect server on PostgreSQL).
COPY pyproject.toml README.md ./
RUN mkdir har && touch har/__init__.py \
    && pip install ".[train]" \
    && rm -rf har

# The whole project (minus train.Dockerfile.dockerignore): params.yaml, dvc.yaml/dvc.lock, .dvc/config,
# great_expectations/, har/. Editable, so dvc.yaml's code deps (har/...) are the code that runs.
# .git is not in the build context, so DVC runs without an SCM. The S3 remote (MinIO in compose) is the
# default here; its credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY at run time.
COPY . .
RUN pip install --no-deps --force-reinstall -e . \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/har har \
    && dvc config --local core.no_scm true \
    && . infra/stack.env && dvc remote add --local --force -d s3 "s3://${HAR_DVC_BUCKET}/cache" \
    && dvc remote modify --local s3 endpointurl http://minio:9000 \
    && mkdir -p data/inference_log reports models mlartifacts \
    && chown -R har:har /app

USER har
# 5000: mlflow server, 4200: prefect server, 8080: worker / runner health server
EXPOSE 5000 4200 8080

CMD ["har", "--help"]
