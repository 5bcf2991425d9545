"""Suite-wide hygiene: MLflow's set_tracking_uri/set_registry_uri write MLFLOW_* environment
variables, which would otherwise leak from one test into every later test and subprocess."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_mlflow_env() -> Iterator[None]:
    before = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        if key not in before:
            del os.environ[key]
    os.environ.update(before)
