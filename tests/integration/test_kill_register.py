"""Fault drill: `kill -9` of `har register` between its MLflow calls, then re-running it.

`har register` creates the version, then points alias challenger at it, then (policy initial, an
empty registry) tags the verdict, moves alias champion and writes champion_history: separate
commits to the SQLite store. Two windows are drilled, each deterministically: a trigger in the
store makes one write (the challenger alias, then the history tag) take minutes, the test kills
the process group as soon as the store shows the write before it committed, and drops the trigger.
The store is real; only the timing is forced. After the last rerun the registry is whole: one
version, both aliases on it, the verdict tagged, the history naming it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from har import stages
from har.config import Params

pytestmark = pytest.mark.integration
NAME = "har-activity"


def _query(db: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
        return con.execute(sql, args).fetchall()


def _aliases(db: Path) -> dict[str, int]:
    return dict(_query(db, "SELECT alias, version FROM registered_model_aliases WHERE name = ?", NAME))


def _versions(db: Path) -> list[int]:
    return [v for (v,) in _query(db, "SELECT version FROM model_versions WHERE name = ? ORDER BY version",
                                 NAME)]


def _model_tags(db: Path) -> dict[str, str]:
    return dict(_query(db, "SELECT key, value FROM registered_model_tags WHERE name = ?", NAME))


@contextmanager
def _slow_write(db: Path, table: str, when: str) -> Iterator[None]:
    """Every INSERT/UPDATE on ``table`` matching ``when`` (about NEW) first runs a billion-row join."""
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE drill_stall (x INTEGER)")
        con.executemany("INSERT INTO drill_stall VALUES (?)", [(i,) for i in range(1000)])
        for op in ("INSERT", "UPDATE"):
            con.execute(f"CREATE TRIGGER drill_stall_{op.lower()} BEFORE {op} ON {table} WHEN {when} "
                        "BEGIN SELECT count(*) FROM drill_stall a, drill_stall b, drill_stall c "
                        "WHERE a.x + b.x + c.x < 0; END")
    try:
        yield
    finally:
        with sqlite3.connect(db, timeout=30) as con:
            con.executescript("DROP TRIGGER drill_stall_insert; DROP TRIGGER drill_stall_update; "
                              "DROP TABLE drill_stall;")


def _har(params: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_ENABLE_TELEMETRY"] = "false"
    return subprocess.Popen([sys.executable, "-m", "har.cli", *args, "--params", str(params)],
                            cwd=params.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _kill_when(proc: subprocess.Popen[str], shows: object, timeout: float = 300) -> None:
    """SIGKILL the process group as soon as ``shows()`` is true (the store shows the prior write)."""
    deadline = time.monotonic() + timeout
    while not shows():
        assert proc.poll() is None, f"exited before the window:\n{proc.communicate()[0][-4000:]}"
        assert time.monotonic() < deadline, "the window never came"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_kill_during_register_then_rerun(project: Params, tmp_path: Path) -> None:
    project.train.epochs = project.train.min_epochs = 1
    stages.model.train(project, show_progress=False)
    stages.model.evaluate(project)
    stages.model.export(project)
    params = tmp_path / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["registry"]["min_macro_f1"] = 0.0  # one epoch: the first version must pass to become champion
    params.write_text(yaml.safe_dump(raw))
    db = tmp_path / "mlflow.db"

    # 1. killed after the version is created, before alias challenger points at it
    with _slow_write(db, "registered_model_aliases", "NEW.alias = 'challenger'"):
        _kill_when(_har(params, "register"), lambda: _versions(db) == [1])
    assert _versions(db) == [1] and _aliases(db) == {}  # half-registered

    # 2. the rerun finishes the registration, promotes, and is killed after alias champion moved,
    #    before champion_history is written
    with _slow_write(db, "registered_model_tags", "NEW.key = 'champion_history'"):
        _kill_when(_har(params, "register"), lambda: "champion" in _aliases(db))
    assert _versions(db) == [1] and _aliases(db) == {"challenger": 1, "champion": 1}
    assert "champion_history" not in _model_tags(db)

    # 3. a rerun with nothing in its way completes: nothing registered twice, nothing dangling
    proc = _har(params, "register")
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out[-4000:]
    assert "already registered as v1" in " ".join(out.split()), out
    assert _versions(db) == [1] and _aliases(db) == {"challenger": 1, "champion": 1}
    assert json.loads(_model_tags(db)["champion_history"]) == ["1"]
    version_tags = dict(_query(db, "SELECT key, value FROM model_version_tags WHERE name = ? AND version = 1",
                               NAME))
    assert version_tags["promotion.decision"] == "promoted" and version_tags["promotion.policy"] == "initial"
    report = json.loads(project.registry.report_path.read_text())
    assert report["version"] == "1" and report["promotion"]["champion_before"] == "1"
    assert _query(db, "PRAGMA integrity_check") == [("ok",)]
