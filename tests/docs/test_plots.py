"""dvc.yaml's plots: every definition renders from the files the stages write, with its title, and
`make plots` (docs/tools/offline_plots.py) gives a page that needs no CDN."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]


def _project(root: Path) -> None:
    """A git + DVC project with the repo's dvc.yaml/params.yaml and small stage outputs."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    train, evaluate = root / params["train"]["reports_dir"], root / params["evaluate"]["out_dir"]
    train.mkdir(parents=True)
    evaluate.mkdir(parents=True)
    history = {"epoch": [1, 2, 3], "train_loss": [2.0, 1.5, 1.2], "val_macro_f1": [0.4, 0.6, 0.7],
               "val_accuracy": [0.5, 0.7, 0.8], "lr": [1e-3] * 3}
    pd.DataFrame(history).to_csv(train / "history.csv", index=False)
    predictions = {"actual": ["WALKING", "LAYING", "LAYING"], "predicted": ["WALKING", "LAYING", "SITTING"]}
    pd.DataFrame(predictions).to_csv(evaluate / "predictions.csv", index=False)
    pd.DataFrame({"class": ["WALKING", "LAYING"], "precision": [1.0, 1.0], "recall": [1.0, 0.5],
                  "f1": [1.0, 0.67], "support": [1, 2]}).to_csv(evaluate / "per_class.csv", index=False)
    shutil.copy(REPO / "docs" / "images" / "prefect-har-retrain.png", evaluate / "confusion.png")  # any PNG
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "-q"], cwd=root, check=True, env=env)


def test_offline_plots_page(tmp_path: Path) -> None:
    _project(tmp_path)
    shutil.copytree(REPO / "docs" / "tools", tmp_path / "docs" / "tools")
    out = tmp_path / "page"
    res = subprocess.run([sys.executable, "docs/tools/offline_plots.py", "-o", str(out)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    assert res.returncode == 0, res.stdout + res.stderr
    html = (out / "index.html").read_text()
    titles = [next(iter(d)) if isinstance(d, dict) else d
              for d in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]]
    for title in titles:
        if "${" not in title:
            assert title in html, title
    assert "cdn.jsdelivr" not in html and "window.vegaEmbed=" in html  # Vega inlined: renders offline
    assert html.count("vegaEmbed('#") == 4  # the four charts; the PNG is an <img>
    assert "confusion.png" in html
