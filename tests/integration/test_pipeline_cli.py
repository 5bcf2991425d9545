"""The `har` CLI end to end on a subset of the real HAPT mirror, in a scratch project folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("HAR_DATA_MIRROR")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set"),
]
HAR = [sys.executable, "-m", "har.cli"]  # the console script, in this interpreter


def _har(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env["GX_ANALYTICS_ENABLED"] = "false"
    return subprocess.run([*HAR, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "great_expectations", root / "great_expectations",
                    ignore=shutil.ignore_patterns("uncommitted"))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["subjects"] = [1, 2, 3, 4, 5, 6]
    raw["split"].update(test_subjects=[2, 4], n_val_subjects=1, cv_folds=3)
    raw["train"].update(epochs=2, cnn1d={"channels": [16, 32], "kernel_size": 5, "dropout": 0.1})
    raw["registry"]["min_macro_f1"] = 0.05
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root


def test_run_builds_processed_outputs(project: Path) -> None:
    res = _har(project, "run")
    assert res.returncode == 0, res.stderr + res.stdout
    processed = project / "data" / "processed"
    with np.load(processed / "windows.npz", allow_pickle=False) as npz:
        assert npz["X"].shape[1:] == (128, 6)
        assert set(np.unique(npz["subject"]).tolist()) == {1, 2, 3, 4, 5, 6}
    splits = json.loads((processed / "splits.json").read_text())
    assert set(splits["test"]) == {2, 4}
    assert not set(splits["train"]) & set(splits["test"])
    stats = json.loads((processed / "stats.json").read_text())
    assert stats["n_windows"] > 500
    assert (project / "reports" / "validation.json").exists()


def test_validate_fails_on_corrupted_copy(project: Path) -> None:
    """A corrupted recordings file: non-zero exit, a report naming the column, good report kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    interim = project / "data" / "interim" / "recordings.parquet"
    good_report = (project / "reports" / "validation.json").read_bytes()
    table = pq.read_table(interim)
    df = table.to_pandas()
    df.loc[df.index[100:110], "acc_x"] = 99.0  # far outside any phone's range
    corrupted = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(corrupted.replace_schema_metadata(table.schema.metadata), interim)
    res = _har(project, "validate")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "acc_x" in out and "99" in out
    assert (project / "reports" / "validation.json").read_bytes() == good_report


def test_unknown_param_is_clear_error(project: Path) -> None:
    res = _har(project, "preprocess", "--overlap", "1.5")
    assert res.returncode == 1
    assert "preprocess.overlap" in res.stderr
