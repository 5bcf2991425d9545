"""The subject-group k-fold protocol of the WHAR Arena benchmark.

Every subject is tested exactly once; a fold's training subjects also supply its validation
subjects (for early stopping) and its input normalisation, so nothing about the test subjects
reaches training. Windows are rebuilt at the protocol's window length (3 s, 50 % overlap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from har.config import TrainParams
from har.evaluation.metrics import classification_metrics
from har.io import atomic_path
from har.preprocess.splits import check_no_leak, group_kfold
from har.preprocess.windows import Windows
from har.training.bundle import ModelMeta, TrainedModel
from har.training.train import FitReport, fit_model

FoldCallback = Callable[[dict], None]


@dataclass(frozen=True)
class FoldSplit:
    """One fold of the protocol: its test subjects, and the training and validation subjects drawn
    from the rest (1-based ``fold``)."""

    fold: int
    train: list[int]
    val: list[int]
    test: list[int]


def fold_splits(subjects: list[int], folds: int, n_val: int, seed: int) -> list[FoldSplit]:
    """The protocol's folds: each subject tested once; a fold's validation subjects (for early
    stopping) are a seeded draw from its training subjects. Leak-checked."""
    out = []
    for k, fold in enumerate(group_kfold(sorted(subjects), folds, seed)):
        rng = np.random.default_rng([seed, k])
        val = sorted(int(s) for s in rng.choice(fold["train"], size=n_val, replace=False))
        train = [s for s in fold["train"] if s not in val]
        check_no_leak({"train": train, "val": val, "test": fold["test"]})
        out.append(FoldSplit(k + 1, train, val, list(fold["test"])))
    return out


def fold_masks(w: Windows, split: FoldSplit) -> dict[str, np.ndarray]:
    """Which windows are the fold's training, validation and test windows (by subject)."""
    return {n: np.isin(w.subject, getattr(split, n)) for n in ("train", "val", "test")}


def fit_fold(w: Windows, classes: list[str], model: str, tp: TrainParams, split: FoldSplit, *,
             window_s: float, overlap: float, epochs: int,
             show_progress: bool = False) -> tuple[TrainedModel, FitReport]:
    """Train ``model`` on one fold's training subjects, early-stopping on its validation subjects."""
    masks = fold_masks(w, split)
    meta = ModelMeta(model=model, classes=classes, channels=w.channels, rate_hz=w.rate_hz,
                     window_len=w.X.shape[1], window_s=window_s, overlap=overlap,
                     train_subjects=split.train, val_subjects=split.val, test_subjects=split.test,
                     train_params=tp.model_dump(mode="json"))
    return fit_model(tp, meta, w.X[masks["train"]], w.y[masks["train"]], w.X[masks["val"]],
                     w.y[masks["val"]], epochs=epochs, show_progress=show_progress)


def run_fold(w: Windows, classes: list[str], model: str, tp: TrainParams, split: FoldSplit, *,
             window_s: float, overlap: float, epochs: int, show_progress: bool = False) -> dict:
    """Train ``model`` on one fold's training subjects and score its test subjects: one table row
    (macro-F1, accuracy, parameters, CPU training seconds). A pure function of its inputs, so a
    fold gives the same row in this process or on a Dask worker."""
    trained, rep = fit_fold(w, classes, model, tp, split, window_s=window_s, overlap=overlap, epochs=epochs,
                            show_progress=show_progress)
    test = fold_masks(w, split)["test"]
    y_test = w.y[test]
    pred = trained.predict_proba(w.X[test]).argmax(1)
    m = classification_metrics(y_test, pred, classes)
    return {"model": model, "fold": split.fold, "test_subjects": " ".join(map(str, split.test)),
            "macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "n_test_windows": len(y_test),
            "n_params": trained.meta.n_params, "train_seconds": rep.train_seconds,
            "epochs_run": rep.epochs_run, "best_epoch": rep.best_epoch}


def cross_validate(w: Windows, classes: list[str], models: list[str], tp: TrainParams, *, folds: int,
                   n_val: int, seed: int, window_s: float, overlap: float, epochs: int,
                   on_fold: FoldCallback | None = None, show_progress: bool = False,
                   skip: Callable[[str, int], bool] | None = None) -> pd.DataFrame:
    """One row per (model, fold), folds in turn in this process (flows/cv.py runs them on Dask).

    ``skip(model, fold)`` lets a long benchmark resume: folds it returns True for are not run.
    """
    rows = []
    for split in fold_splits(sorted(set(w.subject.tolist())), folds, n_val, seed):
        for name in models:
            if skip is not None and skip(name, split.fold):
                continue
            row = run_fold(w, classes, name, tp, split, window_s=window_s, overlap=overlap, epochs=epochs,
                           show_progress=show_progress)
            rows.append(row)
            if on_fold is not None:
                on_fold(row)
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std macro-F1 (and accuracy, time) per model, best first."""
    g = results.groupby("model")
    out = pd.DataFrame({
        "macro_f1_mean": g["macro_f1"].mean(), "macro_f1_std": g["macro_f1"].std(ddof=1).fillna(0.0),
        "accuracy_mean": g["accuracy"].mean(), "accuracy_std": g["accuracy"].std(ddof=1).fillna(0.0),
        "n_params": g["n_params"].first(), "train_seconds_per_fold": g["train_seconds"].mean(),
        "folds": g["fold"].count(),
    })
    return out.sort_values("macro_f1_mean", ascending=False).reset_index()


def summary_markdown(summary: pd.DataFrame) -> str:
    lines = ["| model | macro-F1 (mean ± std) | accuracy (mean ± std) | parameters | CPU s / fold | folds |",
             "|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        lines.append(f"| {r.model} | {r.macro_f1_mean:.3f} ± {r.macro_f1_std:.3f} | "
                     f"{r.accuracy_mean:.3f} ± {r.accuracy_std:.3f} | {r.n_params:,} | "
                     f"{r.train_seconds_per_fold:.1f} | {r.folds} |")
    return "\n".join(lines) + "\n"


def write_cv_tables(results: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    summary = summarize(results)
    paths = {"folds": out_dir / "cv_folds.csv", "summary": out_dir / "cv_summary.csv",
             "markdown": out_dir / "cv_summary.md"}
    with atomic_path(paths["folds"], ".csv") as tmp:
        results.to_csv(tmp, index=False)
    with atomic_path(paths["summary"], ".csv") as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(paths["markdown"], ".md") as tmp:
        tmp.write_text(summary_markdown(summary))
    return paths
