"""The small real-data project's params.yaml: HAPT subjects 1-8 (test subjects 2 and 4), every
output under one folder. A plain module, not a conftest: tests/conftest.py builds its fixtures on it
and a test may import it (``from project_support import write_project_params``); tests/ is on
sys.path because tests/conftest.py lives there."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MIRROR = os.environ.get("HAR_DATA_MIRROR")
SUBJECTS = [1, 2, 3, 4, 5, 6, 7, 8]


def write_project_params(root: Path, **sections: dict) -> Path:
    """The repo's params.yaml with every output under ``root`` and ``sections`` merged in."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(subjects=SUBJECTS, raw_dir=str(root / "data/raw"),
                       interim_path=str(root / "data/interim/recordings.parquet"))
    raw["split"].update(test_subjects=[2, 4], n_val_subjects=1, cv_folds=3)
    raw["preprocess"]["out_dir"] = str(root / "data/processed")
    raw["train"].update(out_dir=str(root / "models"), reports_dir=str(root / "reports/train"), epochs=3,
                        cnn1d={"channels": [16, 32], "kernel_size": 5, "dropout": 0.1}, patience=5)
    raw["evaluate"].update(out_dir=str(root / "reports/evaluation"), cv_out_dir=str(root / "reports/cv"))
    raw["tracking"].update(uri=f"sqlite:///{root / 'mlflow.db'}", artifact_dir=str(root / "mlartifacts"))
    raw["export"].update(path=str(root / "models/model.onnx"), report_path=str(root / "reports/export.json"),
                         latency_runs=50)
    # 3 epochs on 5 training subjects reach ~0.55 test macro-F1: the gate floor is for full HAPT
    raw["registry"].update(report_path=str(root / "reports/registry.json"), min_macro_f1=0.3)
    # preprocess also writes the drift reference: relative, it would land in the repo (the cwd)
    raw["monitor"].update(reference_path=str(root / "data/processed/reference_stats.json"),
                          report_dir=str(root / "reports/drift"))
    for name, values in sections.items():
        raw[name].update(values)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
