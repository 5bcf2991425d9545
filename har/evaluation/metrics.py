"""Classification metrics and the confusion matrix as csv + PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from har.io import atomic_path


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over the classes present in y_true) and per-class P/R/F1/support."""
    labels = np.arange(len(classes))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = s > 0
    return {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f[present].mean()) if present.any() else 0.0,
        "n_windows": int(len(y_true)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(s[i])} for i, c in enumerate(classes)},
    }


def confusion_frame(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> pd.DataFrame:
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(len(classes)))
    return pd.DataFrame(cm, index=pd.Index(classes, name="actual"),
                        columns=pd.Index(classes, name="predicted"))


def write_confusion(cm: pd.DataFrame, csv_path: Path, png_path: Path, title: str = "") -> None:
    """Square csv (rows actual, columns predicted) and a row-normalised heat map with counts."""
    with atomic_path(csv_path, ".csv") as tmp:
        cm.to_csv(tmp)
    # A pyplot-free Figure: no backend switch, so a notebook calling this keeps its inline plots.
    from matplotlib.figure import Figure

    counts = cm.to_numpy()
    rows = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, rows, out=np.zeros_like(counts, dtype=float), where=rows > 0)
    n = len(cm)
    fig = Figure(figsize=(1.0 + 0.7 * n, 0.8 + 0.6 * n), dpi=110)
    ax = fig.subplots()
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), cm.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), cm.index, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of actual class")
    ax.set_title(title or "confusion matrix (rows normalised)", fontsize=10)
    fig.tight_layout()
    with atomic_path(png_path, ".png") as tmp:
        fig.savefig(tmp)


def write_history_plot(history: list[dict[str, float]], png_path: Path) -> None:
    """Training loss and validation macro-F1 per epoch."""
    from matplotlib.figure import Figure

    h = pd.DataFrame(history)
    fig = Figure(figsize=(6, 3.5), dpi=110)
    ax = fig.subplots()
    if "train_loss" in h:
        ax.plot(h["epoch"], h["train_loss"], label="train loss", color="tab:red")
        ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(h["epoch"], h["val_macro_f1"], label="val macro-F1", color="tab:blue")
    ax2.set_ylabel("val macro-F1")
    ax.set_xlabel("epoch")
    fig.legend(loc="lower center", ncol=2, fontsize=8)
    fig.tight_layout()
    with atomic_path(png_path, ".png") as tmp:
        fig.savefig(tmp)


def write_history(history: list[dict[str, float]], reports_dir: Path) -> Path:
    """Per-epoch history as ``history.csv`` (DVC plots) and ``history.png``; returns the PNG."""
    with atomic_path(reports_dir / "history.csv", ".csv") as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    png = reports_dir / "history.png"
    write_history_plot(history, png)
    return png


def write_predictions(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], metrics: dict[str, Any],
                      out_dir: Path) -> Path:
    """``predictions.csv`` (long form, for DVC's confusion template: actual vs predicted per window)
    and ``per_class.csv`` (precision, recall, F1, support); returns the per-class table's path."""
    with atomic_path(out_dir / "predictions.csv", ".csv") as tmp:
        pd.DataFrame({"actual": [classes[i] for i in y_true],
                      "predicted": [classes[i] for i in y_pred]}).to_csv(tmp, index=False)
    per_class = pd.DataFrame(metrics["per_class"]).T.rename_axis("class")
    path = out_dir / "per_class.csv"
    with atomic_path(path, ".csv") as tmp:
        per_class.to_csv(tmp)
    return path
