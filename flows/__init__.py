"""Prefect flows: the training pipeline, the drift check and the served deployments."""
