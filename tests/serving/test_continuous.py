"""Continuous recognition scored sample by sample on real HAPT recordings (har.evaluation.continuous)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from serving_support import CLASSES

from har.data.ingest import read_recordings
from har.evaluation.continuous import Smoothing, choose_smoothing, default_grid, sample_scores
from har.serving.model import load_model


def test_sample_scores_and_smoothing_chosen_on_validation(trained_onnx: Path, hapt: dict[str, Path]) -> None:
    model = load_model(str(trained_onnx))
    recordings, meta = read_recordings(hapt["recordings"])
    splits = json.loads(hapt["splits"].read_text())
    test = splits["test"]
    labelled = int((~pd.isna(recordings[recordings["subject"].isin(test)]["label"])).sum())
    rate = float(meta["sampling_rate_hz"])
    raw = sample_scores(model, recordings, rate, test, CLASSES, Smoothing("majority"))
    assert raw["n_samples"] == labelled and raw["smoothing"] == "none"
    assert 0.3 < raw["accuracy"] <= 1 and 0 < raw["macro_f1"] <= 1
    best, rows = choose_smoothing(model, recordings, float(meta["sampling_rate_hz"]), splits["val"], CLASSES,
                                  [Smoothing("majority"), Smoothing("hmm", 1, 0.05)])
    assert {r["smoothing"] for r in rows} == {"none", "hmm p=0.05"}
    assert best.label() == max(rows, key=lambda r: r["macro_f1"])["smoothing"]
    assert set(default_grid()) >= {Smoothing("majority", 3), Smoothing("hmm", 1, 0.05)}
