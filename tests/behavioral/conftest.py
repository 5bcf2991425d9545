"""A small cnn1d trained once per session by the project's own code (har.training.fit_model) on
the training subjects of HAPT 1-8, with params.yaml's augmentations; scored on test subjects 2, 4."""

from __future__ import annotations

from pathlib import Path

import pytest
from behavioral_support import Behaviour

from har.config import load_params
from har.training.bundle import ModelMeta
from har.training.data import load_split_data
from har.training.train import fit_model

EPOCHS = 6  # test accuracy ~0.70 (12 classes): enough for stable decisions to measure


@pytest.fixture(scope="session")
def behaviour(processed_root: Path) -> Behaviour:
    p = load_params(processed_root / "params.yaml")
    data = load_split_data(processed_root / "data/processed", p.preprocess.classes)
    (X, y), (Xv, yv), (Xt, yt) = data.part("train"), data.part("val"), data.part("test")
    tp = p.train.model_copy(update={"model": "cnn1d", "epochs": EPOCHS, "min_epochs": 1})
    w = data.windows
    meta = ModelMeta(model="cnn1d", classes=data.classes, channels=w.channels, rate_hz=w.rate_hz,
                     window_len=int(w.X.shape[1]), window_s=p.preprocess.window_s,
                     overlap=p.preprocess.overlap, train_params=tp.model_dump(mode="json"))
    model, _ = fit_model(tp, meta, X, y, Xv, yv, show_progress=False)
    assert w.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    return Behaviour(model, Xt, yt, X.reshape(-1, X.shape[2]).std(axis=0), tp.augment)
