"""`dvc repro` builds the data pipeline from a clone; a second `dvc repro` runs nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("HAR_DATA_MIRROR")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set")]


def test_dvc_repro_twice(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["data"]["subjects"] = [1, 2, 3, 4, 5]
    params["split"].update(test_subjects=[2, 4], n_val_subjects=1, cv_folds=3)
    (clone / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GX_ANALYTICS_ENABLED": "false"}
    dvc = [str(Path(sys.executable).parent / "dvc"), "repro"]
    first = subprocess.run(dvc, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Running stage 'preprocess'" in first.stdout
    assert (clone / "data" / "processed" / "windows.npz").is_file()
    second = subprocess.run(dvc, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Running stage" not in second.stdout
    assert "Data and pipelines are up to date" in second.stdout
