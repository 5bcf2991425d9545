"""Fault drill: `kill -9` of `har train` in the middle of an epoch, then `har train --resume`, ends
with the same weights, metrics and MLflow run as a run that was never interrupted.

Both runs train over the same HAPT 1-8 windows, each with its own models/, reports/ and SQLite MLflow
store: the killed one as real `har train` processes, the reference in this process (the same stage
function; it saves a process start-up, and the thread count is params train.num_threads either way).
The kill lands once epoch 1 is fully recorded (its metric is in the store) and the process has
spent another 0.5 s of CPU time, i.e. inside epoch 2 (an epoch costs seconds of CPU here); CPU time,
not wall time, so a loaded machine cannot push the kill past the epoch. The checkpoint then says
which epochs were done (1 as a rule), and the resume must start right after them.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from project_support import write_project_params

from har import stages
from har.config import load_params

pytestmark = pytest.mark.integration
EPOCHS = 3


def _project(root: Path, processed_root: Path) -> Path:
    root.mkdir()
    return write_project_params(root, preprocess={"out_dir": str(processed_root / "data/processed")},
                                train={"epochs": EPOCHS, "min_epochs": EPOCHS, "patience": EPOCHS})


def _har(params: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_ENABLE_TELEMETRY"] = "false"
    return subprocess.Popen([sys.executable, "-m", "har.cli", *args, "--params", str(params)],
                            cwd=params.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    return out


def _metric_rows(root: Path, key: str = "val_macro_f1") -> list[tuple[int, float, int]]:
    """(step, value, timestamp ms) of every logged value, read straight from the SQLite store."""
    db = root / "mlflow.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
            return con.execute("SELECT step, value, timestamp FROM metrics WHERE key = ? "
                               "ORDER BY step, timestamp", (key,)).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _runs(root: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{root / 'mlflow.db'}?mode=ro", uri=True) as con:
        return con.execute("SELECT run_uuid, status FROM runs").fetchall()


def test_kill_mid_epoch_then_resume_equals_uninterrupted(processed_root: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "uninterrupted", tmp_path / "killed"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    stages.model.train(load_params(_project(a, processed_root)), show_progress=False)
    steps_a = _metric_rows(a)
    assert [s for s, _, _ in steps_a] == list(range(1, EPOCHS + 1))

    proc = _har(_project(b, processed_root), "train")
    deadline = time.monotonic() + 300
    while not _metric_rows(b):
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "epoch 1 never finished"
        time.sleep(0.05)
    cpu_at_epoch_1 = _cpu_seconds(proc.pid)
    while _cpu_seconds(proc.pid) < cpu_at_epoch_1 + 0.5:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    checkpoint = torch.load(b / "models/checkpoints/last.pt", weights_only=False)
    # inside epoch 2 as a rule; a starved poller may notice epoch 1 late, and epoch 3 is as good a
    # middle, so the checkpoint says which epoch the kill interrupted
    done = checkpoint["epoch"] + 1
    assert 1 <= done < EPOCHS and not checkpoint["finished"], f"killed after {done} of {EPOCHS} epochs"
    assert not (b / "models/trained").exists()  # the model is only written once training ends

    out = _finish(_har(b / "params.yaml", "train", "--resume"))
    assert f"at epoch {done}" in " ".join(out.split()), out  # "resuming from … at epoch N" (0-based)

    # identical weights...
    wa = torch.load(a / "models/trained/model.pt", weights_only=False)["state_dict"]
    wb = torch.load(b / "models/trained/model.pt", weights_only=False)["state_dict"]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    # ...identical metrics and per-epoch history...
    ma, mb = (json.loads((r / "reports/train/metrics.json").read_text()) for r in (a, b))
    ma.pop("train_seconds"), mb.pop("train_seconds")
    assert ma == mb and ma["epochs_run"] == EPOCHS
    assert (a / "reports/train/history.csv").read_text() == (b / "reports/train/history.csv").read_text()
    # ...and one MLflow run that holds every epoch exactly once (a restart from scratch would log
    # epoch 1 again), finished, with the same values
    steps_b = _metric_rows(b)
    assert [(s, v) for s, v, _ in steps_b] == [(s, v) for s, v, _ in steps_a]
    assert [status for _, status in _runs(b)] == ["FINISHED"]
