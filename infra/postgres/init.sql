-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d), as
-- POSTGRES_USER. One database per server; no credentials live here (they come from infra/.env).
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
