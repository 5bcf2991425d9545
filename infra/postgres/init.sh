#!/bin/sh
# Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d), as
# POSTGRES_USER. The database names come from infra/stack.env (params.yaml `stack`), the same names
# `har stack up` creates; no credentials live here (they come from infra/.env).
set -eu
for db in "$HAR_MLFLOW_DB" "$HAR_PREFECT_DB"; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE DATABASE \"$db\""
done
