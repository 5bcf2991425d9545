"""har/evaluation/metrics.py against values computed by hand, and the files it writes.

Ten windows, four classes; class ``d`` never occurs but is predicted once. By hand (rows actual,
columns predicted):

            a  b  c  d      precision  recall  F1
        a   3  1  0  0      3/3        3/4     6/7
        b   0  1  1  0      1/2        1/2     1/2
        c   0  0  3  1      3/4        3/4     3/4
        d   0  0  0  0      0/1        -       0   (support 0: not in the macro mean)

accuracy 7/10; macro-F1 over the classes present = (6/7 + 1/2 + 3/4) / 3 = 59/84.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from har.evaluation.metrics import (
    classification_metrics,
    confusion_frame,
    write_confusion,
    write_history,
    write_predictions,
)

CLASSES = ["a", "b", "c", "d"]
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 0])
Y_PRED = np.array([0, 0, 1, 1, 2, 2, 2, 3, 2, 0])
CONFUSION = [[3, 1, 0, 0], [0, 1, 1, 0], [0, 0, 3, 1], [0, 0, 0, 0]]
PER_CLASS = {  # precision, recall, F1, support
    "a": (1.0, 3 / 4, 6 / 7, 4),
    "b": (1 / 2, 1 / 2, 1 / 2, 2),
    "c": (3 / 4, 3 / 4, 3 / 4, 4),
    "d": (0.0, 0.0, 0.0, 0),
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_metrics_match_hand_computed_values() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["macro_f1"] == pytest.approx(59 / 84)
    assert m["n_windows"] == 10
    for name, (precision, recall, f1, support) in PER_CLASS.items():
        got = m["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((precision, recall, f1)), name
        assert got["support"] == support, name


def test_macro_f1_ignores_only_absent_classes() -> None:
    """A class that is present and never recognised pulls the mean down; an absent one does not."""
    y = np.array([0, 0, 1, 1])
    assert classification_metrics(y, y, CLASSES)["macro_f1"] == 1.0  # c, d absent
    m = classification_metrics(y, np.array([0, 0, 0, 0]), CLASSES)
    # a: P 2/4, R 1 → F1 2/3; b: F1 0 → mean 1/3
    assert m["macro_f1"] == pytest.approx(1 / 3)


def test_confusion_matrix_and_its_files(tmp_path: Path) -> None:
    cm = confusion_frame(Y_TRUE, Y_PRED, CLASSES)
    assert cm.to_numpy().tolist() == CONFUSION
    assert list(cm.index) == list(cm.columns) == CLASSES
    assert (cm.index.name, cm.columns.name) == ("actual", "predicted")

    csv, png = tmp_path / "out" / "confusion.csv", tmp_path / "out" / "confusion.png"
    write_confusion(cm, csv, png, "hand-made")
    back = pd.read_csv(csv, index_col=0)
    assert back.index.name == "actual" and list(back.columns) == CLASSES
    assert back.to_numpy().tolist() == CONFUSION
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5_000
    assert sorted(p.name for p in csv.parent.iterdir()) == ["confusion.csv", "confusion.png"]  # no temp files


def test_per_class_and_prediction_files(tmp_path: Path) -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES)
    path = write_predictions(Y_TRUE, Y_PRED, CLASSES, m, tmp_path)
    assert path == tmp_path / "per_class.csv"
    per_class = pd.read_csv(path, index_col="class")
    assert list(per_class.index) == CLASSES
    for name, (precision, recall, f1, support) in PER_CLASS.items():
        row = per_class.loc[name]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision, recall, f1))
        assert row["support"] == support
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert list(predictions.columns) == ["actual", "predicted"]
    assert predictions["actual"].tolist() == [CLASSES[i] for i in Y_TRUE]
    assert predictions["predicted"].tolist() == [CLASSES[i] for i in Y_PRED]
    # the long form rebuilds the same confusion matrix (what DVC's confusion template draws)
    crosstab = pd.crosstab(predictions["actual"], predictions["predicted"]).reindex(
        index=CLASSES, columns=CLASSES, fill_value=0)
    assert crosstab.to_numpy().tolist() == CONFUSION


def test_history_files(tmp_path: Path) -> None:
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_macro_f1": 0.2 * e} for e in (1, 2, 3)]
    png = write_history(history, tmp_path / "train")
    assert png == tmp_path / "train" / "history.png" and png.read_bytes()[:8] == PNG_MAGIC
    back = pd.read_csv(tmp_path / "train" / "history.csv")
    assert list(back.columns) == ["epoch", "train_loss", "val_macro_f1"]
    np.testing.assert_allclose(back.to_numpy(), [[h[c] for c in back.columns] for h in history])
