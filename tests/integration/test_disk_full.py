"""Fault drill: the disk refuses a write during `har preprocess` and `har export`.

A file-size limit (RLIMIT_FSIZE, set in the `har` subprocess before it starts) stands in for a full
disk: a write past it fails with EFBIG as it would with ENOSPC. Each run must end with one clear
`error:` line (no traceback) and exit code 1, and leave every earlier output byte-identical and
not even replaced (same inode and mtime), with no temp file behind.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from project_support import write_project_params

from har import stages
from har.config import Params

pytestmark = pytest.mark.integration

Snapshot = dict[str, tuple[bytes, int, int]]


def _snapshot(*paths: Path) -> Snapshot:
    """Every file under ``paths``: bytes, inode, mtime (a replaced file has a new inode)."""
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*"))) if f.is_file()]
    return {str(f): (f.read_bytes(), f.stat().st_ino, f.stat().st_mtime_ns) for f in files}


def _limited(limit_bytes: int) -> Callable[[], None]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return preexec


def _har_limited(params: Path, limit_bytes: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_ENABLE_TELEMETRY"] = "false"
    return subprocess.run([sys.executable, "-m", "har.cli", *args, "--params", str(params)],
                          cwd=params.parent, env=env, capture_output=True, text=True, timeout=600,
                          preexec_fn=_limited(limit_bytes))


def _assert_one_clear_line(res: subprocess.CompletedProcess[str], stage: str, reason: str) -> None:
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"error: {stage}: ") and reason in lines[0], lines[0]
    assert "free space and re-run" in lines[0] and "Traceback" not in res.stdout + res.stderr


def test_preprocess_on_a_full_disk(processed_root: Path, tmp_path: Path) -> None:
    processed = tmp_path / "data/processed"
    shutil.copytree(processed_root / "data/processed", processed)
    params = write_project_params(tmp_path, data={
        "interim_path": str(processed_root / "data/interim/recordings.parquet")})
    limit = 1 << 20
    assert (processed / "windows.npz").stat().st_size > 4 * limit  # the drill hits the windows file
    before = _snapshot(processed)
    assert len(before) == 6  # windows, splits, label map, normaliser, stats, drift reference

    # other params: a run that got through would change every file
    res = _har_limited(params, limit, "preprocess", "--overlap", "0.75")

    _assert_one_clear_line(res, "preprocess", "File too large")
    assert _snapshot(processed) == before
    assert sorted(p.name for p in processed.iterdir()) == sorted(Path(f).name for f in before)


def test_export_on_a_full_disk(project: Params, tmp_path: Path) -> None:
    project.train.epochs = project.train.min_epochs = 1
    stages.model.train(project, show_progress=False)
    first = stages.model.export(project)
    onnx_size = project.export.path.stat().st_size
    db = tmp_path / "mlflow.db"
    outputs = (project.export.path, project.export.report_path)
    before = _snapshot(*outputs)

    # below the ONNX file's size: the exporter cannot write the model
    assert onnx_size > 16 << 10
    res = _har_limited(tmp_path / "params.yaml", 8 << 10, "export")
    _assert_one_clear_line(res, "export", "File too large")
    assert _snapshot(*outputs) == before

    # room for the ONNX file but not for the MLflow store to change: the model is logged last
    assert onnx_size < 64 << 10 < db.stat().st_size
    res = _har_limited(tmp_path / "params.yaml", 64 << 10, "export")
    _assert_one_clear_line(res, "export", "the SQLite database cannot be written")
    assert _snapshot(*outputs) == before

    assert sorted(p.name for p in project.export.path.parent.iterdir()) == [
        "checkpoints", "model.onnx", "trained"]  # no .model.onnx-* temp file left
    with sqlite3.connect(db) as con:  # SQLite rolls the failed transaction back on the next open
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("SELECT status FROM runs WHERE run_uuid = ?",
                           (first["run_id"],)).fetchall() == [("FINISHED",)]
