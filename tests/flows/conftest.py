"""Prefect test setup: isolated PREFECT_HOME, no telemetry, a session-wide temporary API server."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("HAR_DATA_MIRROR")

# Before prefect is imported anywhere in this process (its settings are read at import): an
# isolated home, then the flows package's own environment defaults, as `har pipeline` sets them.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="har-prefect-home-")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the top-level flows/ package
import flows  # noqa: E402, F401


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="session")
def make_project() -> Any:
    return _make_project


def _make_project(root: Path, **sections: dict[str, Any]) -> Path:
    """A scratch project: the GX suites and a params.yaml for HAPT subjects 1-6 (test 2, 4)."""
    shutil.copytree(REPO / "great_expectations", root / "great_expectations",
                    ignore=shutil.ignore_patterns("uncommitted"))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["subjects"] = [1, 2, 3, 4, 5, 6]
    raw["split"].update(test_subjects=[2, 4], n_val_subjects=1, cv_folds=3)
    raw["train"].update(model="tinyhar", epochs=2, patience=2, batch_size=128)
    raw["export"].update(latency_runs=20)
    # gates wide open: the first run must become champion so a later failure can be checked
    raw["registry"].update(min_macro_f1=0.0, latency_budget_ms=1000.0, max_parity_diff=0.01)
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root
