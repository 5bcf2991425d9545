"""The notebooks run, top to bottom, on a subset of HAPT: each jupytext script (the committed source)
becomes a notebook that a real Jupyter kernel executes, in a scratch working directory, with the
subset chosen through its parameters cell (`HAR_NB_SUBJECTS`). The experiment notebook trains and
logs to its own MLflow store; the results notebook then reads that store."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
MIRROR = os.environ.get("HAR_DATA_MIRROR")
SUBSET = "1,2,3,4,5,6"  # subjects 2 and 4 are official test subjects: every split is non-empty
CELL_TIMEOUT_S = 300
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set: the notebooks read HAPT")]


def execute(script: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[Any, float]:
    """Run ``script`` as a notebook in ``cwd``; returns the executed notebook and its seconds."""
    import jupytext
    from nbclient import NotebookClient

    # the kernel imports this checkout's har, whatever is installed in the environment
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # never the user's server
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import nbformat

    nb = jupytext.read(script)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:  # the executed notebook, outputs and error included, for a look after the test
        nbformat.write(nb, cwd / f"{script.stem}.ipynb")
    return nb, time.perf_counter() - start


def text(nb: Any) -> str:
    """Every stream and text/plain output of the executed notebook."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") or o.get("data", {}).get("text/plain", ""))
    return "\n".join(out)


def images(nb: Any) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_every_notebook_has_a_parameters_cell_and_is_covered() -> None:
    import jupytext

    scripts = sorted(NOTEBOOKS.glob("*/*.py"))
    assert [s.parent.name for s in scripts] == ["eda", "experiments", "results"]
    for script in scripts:
        nb = jupytext.read(script)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "HAR_NB_" in tagged[0].source, script


def test_eda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb, seconds = execute(NOTEBOOKS / "eda" / "hapt_eda.py", tmp_path, monkeypatch, HAR_NB_SUBJECTS=SUBSET)
    out = text(nb)
    assert f"har from {REPO / 'har'}" in out, out[:500]
    assert "from 6 subjects" in out and "STAND_TO_SIT" in out
    assert "body_acc_x" in out and "grav_acc_z" in out  # the gravity split's channels
    assert images(nb) == 4
    print(f"eda notebook: {seconds:.0f} s")


def test_experiment_then_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp, exp_s = execute(NOTEBOOKS / "experiments" / "train_small.py", tmp_path, monkeypatch,
                         HAR_NB_SUBJECTS=SUBSET, HAR_NB_EPOCHS="2")
    out = text(exp)
    store = tmp_path / "work" / "mlflow.db"
    assert store.is_file(), out[-2000:]  # the throwaway store under the notebook's working dir
    assert "test subjects [2, 4]: accuracy" in out and "MLflow run" in out
    assert images(exp) == 2  # curves and confusion matrix: har's plotting left the inline backend alone

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1 and "test_macro_f1" in runs[0].data.metrics
    assert runs[0].data.params["train.epochs"] == "2"

    res, res_s = execute(NOTEBOOKS / "results" / "compare.py", tmp_path, monkeypatch,
                         HAR_NB_SUBJECTS=SUBSET, HAR_NB_TRACKING_URI=f"sqlite:///{store}")
    out = text(res)
    assert runs[0].info.run_id[:8] in out  # the run the experiment logged is in the comparison
    assert "CNN-HAR" in out  # the published figures, from benchmarks/report.py
    assert images(res) >= 2
    print(f"experiment notebook: {exp_s:.0f} s, results notebook: {res_s:.0f} s")
