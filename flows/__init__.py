"""Prefect flows: the training pipeline, the drift check and the served deployments.

Importing this package sets the environment every flow process needs, whoever started it (the
`har` CLI, `har pipeline serve`, `python -m flows.deploy`, a `prefect worker` loading
``flows/training.py`` as a script): defaults for Prefect, MLflow and GX, and the ``har`` logger
hierarchy attached to the flow run's logs, so the UI shows each stage's outcome line.
"""

from __future__ import annotations

import logging
import os
import sys

HAR_LOGGER = "har"
EXTRA_LOGGERS = "PREFECT_LOGGING_EXTRA_LOGGERS"  # prefect.settings: logging.extra_loggers
ENV_DEFAULTS = {
    # The ephemeral API server needs more than the default 20 s to start on small machines.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # har's loggers also run outside flow runs (e.g. stages called directly in the same process);
    # those records simply stay off the API instead of warning.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "DO_NOT_TRACK": "1",
    "MLFLOW_ENABLE_TELEMETRY": "false",
    "GX_ANALYTICS_ENABLED": "false",
}


def prepare_environment() -> None:
    """Environment defaults and the ``har`` logger on Prefect's API log handler (idempotent)."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Add har to the user's extra loggers rather than replace them. Prefect reads this when it is
    # imported (and passes it on to the processes that run deployments).
    extra = [n.strip() for n in os.environ.get(EXTRA_LOGGERS, "").split(",") if n.strip()]
    if HAR_LOGGER not in extra:
        os.environ[EXTRA_LOGGERS] = ",".join([*extra, HAR_LOGGER])
    har = logging.getLogger(HAR_LOGGER)
    configuration = sys.modules.get("prefect.logging.configuration")
    if configuration is not None and configuration.PROCESS_LOGGING_CONFIG:
        # Prefect configured logging before this package was imported (a worker's flow-run process
        # imports prefect first, then the flow file): attach its API handler the way it attaches
        # extra loggers at import.
        for handler in logging.getLogger("prefect.extra").handlers:
            if handler not in har.handlers:
                har.addHandler(handler)
    # Stage outcome lines are INFO; with nothing configured the root logger's WARNING would drop them.
    if har.getEffectiveLevel() > logging.INFO:
        har.setLevel(logging.INFO)


prepare_environment()
