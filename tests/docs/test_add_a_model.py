"""docs/tutorials/add-a-model.md is code that runs: its module registers a model, its params.yaml
section validates, and the model trains, exports to the ONNX contract and serves predictions."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "tutorials" / "add-a-model.md"


def _block(lang: str, title: str) -> str:
    m = re.search(rf'^```{lang} title="{re.escape(title)}"\n(.*?)^```', PAGE.read_text(), re.S | re.M)
    assert m, f"{PAGE.name}: no {lang} block titled {title!r}"
    return m.group(1)


def test_the_tutorial_model_trains_exports_and_serves(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from har.config import load_params
    from har.errors import ConfigError
    from har.export.onnx import export_onnx, parity
    from har.models import get_model, model_names
    from har.serving.model import load_model
    from har.training.bundle import ModelMeta
    from har.training.train import fit_model

    # the page's module, imported the way the registry would import har/models/statmlp.py
    (tmp_path / "statmlp_tutorial.py").write_text(_block("python", "har/models/statmlp.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("statmlp_tutorial")
    assert "statmlp" in model_names() and get_model("statmlp").kind == "deep"

    section = yaml.safe_load(_block("yaml", "params.yaml (under train:)"))
    p = load_params(REPO / "params.yaml", {"train.model": "statmlp", "train.statmlp": section["statmlp"],
                                           "train.epochs": 2, "train.min_epochs": 1})
    assert p.train.model_params().hidden == 64
    with pytest.raises(ConfigError, match=r"train\.statmlp\.hiden"):
        load_params(REPO / "params.yaml", {"train.statmlp": {"hiden": 8}}).train.model_params("statmlp")

    # synthetic windows in physical units: enough to prove the contract, not the accuracy
    rng = np.random.default_rng(0)
    classes, channels = p.preprocess.classes, ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    X = rng.normal(size=(96, 128, 6)).astype(np.float32)
    y = np.arange(96) % len(classes)
    meta = ModelMeta(model="statmlp", classes=classes, channels=channels, rate_hz=50.0, window_len=128,
                     window_s=2.56, overlap=0.5, train_params=p.train.model_dump(mode="json"))
    model, report = fit_model(p.train, meta, X[:64], y[:64], X[64:], y[64:], show_progress=False)
    assert report.epochs_run == 2 and meta.n_params == (12 * 64 + 64) + (64 * 12 + 12)

    onnx = export_onnx(model, tmp_path / "statmlp.onnx", opset=p.export.opset)
    assert parity(model, onnx, X[64:]) <= p.export.parity_atol
    served = load_model(str(onnx))
    assert served.spec.model_type == "statmlp"
    probs = served.predict_proba(X[:3])
    assert probs.shape == (3, len(classes)) and np.allclose(probs.sum(1), 1, atol=1e-5)
