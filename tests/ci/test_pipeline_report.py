"""`make ci-report` (.ci/pipeline_report.py) against a commit of the test's own making: a clone of this
repository where a branch changes `train.lr`; the report against the branch's base shows that
params change, a metrics diff of the two subset runs, the validation suites and the promotion gate's
dry-run verdict."""

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
              pytest.mark.skipif(not MIRROR, reason="HAR_DATA_MIRROR not set: the report runs the pipeline")]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def test_report_of_a_params_change(tmp_path: Path) -> None:
    src = tmp_path / "src"
    git(tmp_path, "clone", "-q", str(REPO), str(src))
    git(src, "checkout", "-q", "-b", "base")
    git(src, "checkout", "-q", "-b", "change")
    params = yaml.safe_load((src / "params.yaml").read_text())
    assert params["train"]["lr"] != 0.001
    before = params["train"]["lr"]
    params["train"]["lr"] = 0.001
    (src / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(src, "commit", "-qam", "a lower learning rate")

    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}
    out = tmp_path / "report.md"
    res = subprocess.run([sys.executable, ".ci/pipeline_report.py", "--base", "base", "--out", str(out)],
                         cwd=src, env={**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"},
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    report = out.read_text()
    assert report == res.stdout.strip() + "\n" or report.strip() == res.stdout.strip()
    sections = dict(part.split("\n", 1) for part in report.split("### ")[1:])

    params_diff = sections["Params diff (the change itself)"]
    assert "train.lr" in params_diff and str(before) in params_diff and "0.001" in params_diff
    assert "data.subjects" not in params_diff  # the CI subset is not part of the change

    metrics_diff = sections["Metrics diff (base run → change run, on the subset)"]
    assert "| file | metric | base | change |" in metrics_diff
    assert "reports/evaluation/metrics.json" in metrics_diff
    assert "macro_f1" in metrics_diff  # a different learning rate trains a different model

    validation = sections["Validation suites"]
    assert validation.count("passed: ") == 4  # recordings and windows, base and change

    gate = sections["Promotion gate (dry run: nothing moves)"]
    assert ("would promote" in gate) or ("would reject" in gate)
    assert "against champion v1" in gate and "version 2" in gate

    stages = sections["Stages"]
    base_line, change_line = stages.strip().splitlines()
    assert "fetch" in base_line and "train" in base_line
    # the change starts from the base run's dvc.lock: only what train.lr feeds re-runs
    assert change_line == "- change: train, evaluate, export, register"
