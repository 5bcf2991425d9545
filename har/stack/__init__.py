"""The deployed stack on one machine: PostgreSQL, S3, MLflow, Prefect server + worker, the API."""
