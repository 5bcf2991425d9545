"""The subject-group k-fold protocol of the WHAR Arena benchmark.

Every subject is tested exactly once; a fold's training subjects also supply its validation
subjects (for early stopping) and its input normalisation, so nothing about the test subjects
reaches training. Windows are rebuilt at the protocol's window length (3 s, 50 % overlap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from har.config import TrainParams
from har.evaluation.context import context_predictions
from har.evaluation.metrics import classification_metrics
from har.io import atomic_path
from har.preprocess.splits import check_no_leak, group_kfold
from har.preprocess.windows import Windows
from har.training.bundle import ModelMeta, TrainedModel
from har.training.train import FitReport, fit_model

FoldCallback = Callable[[dict], None]


@dataclass(frozen=True)
class FoldContext:
    """How a fold is also scored with recording context (har/evaluation/context.py): the classes'
    transition grammar and the persistence of the context HMM."""

    grammar: dict[str, dict[str, list[str]]]
    switch_prob: float


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


def score_fold(w: Windows, classes: list[str], split: FoldSplit, probs: np.ndarray,
               context: FoldContext | None = None) -> dict[str, Any]:
    """Macro-F1, accuracy and per-class F1 of a fold's test windows from their class probabilities:
    each window on its own and, with ``context``, each test recording decoded by the context HMM."""
    test = fold_masks(w, split)["test"]
    y_test = w.y[test]
    m = classification_metrics(y_test, probs.argmax(1), classes)
    row = {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "n_test_windows": len(y_test),
           "per_class_f1": {c: v["f1"] for c, v in m["per_class"].items()}}
    if context is not None:
        pred = context_predictions(probs, w, test, classes, context.grammar, context.switch_prob)
        mc = classification_metrics(y_test, pred, classes)
        row |= {"macro_f1_context": mc["macro_f1"], "accuracy_context": mc["accuracy"],
                "per_class_f1_context": {c: v["f1"] for c, v in mc["per_class"].items()}}
    return row


def run_fold(w: Windows, classes: list[str], model: str, tp: TrainParams, split: FoldSplit, *,
             window_s: float, overlap: float, epochs: int, show_progress: bool = False,
             context: FoldContext | None = None) -> dict:
    """Train ``model`` on one fold's training subjects and score its test subjects: one table row
    (macro-F1 of the windows and, with ``context``, of the recordings decoded in context; accuracy,
    parameters, CPU training seconds). A pure function of its inputs, so a fold gives the same row
    in this process or on a Dask worker."""
    trained, rep = fit_fold(w, classes, model, tp, split, window_s=window_s, overlap=overlap, epochs=epochs,
                            show_progress=show_progress)
    test = fold_masks(w, split)["test"]
    scores = score_fold(w, classes, split, trained.predict_proba(w.X[test]), context)
    scores = {k: v for k, v in scores.items() if not k.startswith("per_class")}  # the table's columns
    return {"model": model, "fold": split.fold, "test_subjects": " ".join(map(str, split.test)), **scores,
            "n_params": trained.meta.n_params, "train_seconds": rep.train_seconds,
            "epochs_run": rep.epochs_run, "best_epoch": rep.best_epoch}


def cross_validate(w: Windows, classes: list[str], models: list[str], tp: TrainParams, *, folds: int,
                   n_val: int, seed: int, window_s: float, overlap: float, epochs: int,
                   on_fold: FoldCallback | None = None, show_progress: bool = False,
                   skip: Callable[[str, int], bool] | None = None,
                   context: FoldContext | None = None) -> pd.DataFrame:
    """One row per (model, fold), folds in turn in this process (flows/cv.py runs them on Dask).

    ``skip(model, fold)`` lets a long benchmark resume: folds it returns True for are not run.
    """
    rows = []
    for split in fold_splits(sorted(set(w.subject.tolist())), folds, n_val, seed):
        for name in models:
            if skip is not None and skip(name, split.fold):
                continue
            row = run_fold(w, classes, name, tp, split, window_s=window_s, overlap=overlap, epochs=epochs,
                           show_progress=show_progress, context=context)
            rows.append(row)
            if on_fold is not None:
                on_fold(row)
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std macro-F1 (windows one by one, and with recording context when scored), accuracy
    and time per model, best first."""
    g = results.groupby("model")
    cols = {
        "macro_f1_mean": g["macro_f1"].mean(), "macro_f1_std": g["macro_f1"].std(ddof=1).fillna(0.0),
        "accuracy_mean": g["accuracy"].mean(), "accuracy_std": g["accuracy"].std(ddof=1).fillna(0.0),
    }
    if "macro_f1_context" in results:
        cols |= {"macro_f1_context_mean": g["macro_f1_context"].mean(),
                 "macro_f1_context_std": g["macro_f1_context"].std(ddof=1).fillna(0.0)}
    cols |= {"n_params": g["n_params"].first(), "train_seconds_per_fold": g["train_seconds"].mean(),
             "folds": g["fold"].count()}
    return pd.DataFrame(cols).sort_values("macro_f1_mean", ascending=False).reset_index()


def summary_markdown(summary: pd.DataFrame) -> str:
    context = "macro_f1_context_mean" in summary
    lines = ["| model | macro-F1 (mean ± std) |" + (" with recording context |" if context else "")
             + " accuracy (mean ± std) | parameters | CPU s / fold | folds |",
             "|---|---|" + ("---|" if context else "") + "---|---|---|---|"]
    for r in summary.itertuples():
        ctx = f" {r.macro_f1_context_mean:.3f} ± {r.macro_f1_context_std:.3f} |" if context else ""
        lines.append(f"| {r.model} | {r.macro_f1_mean:.3f} ± {r.macro_f1_std:.3f} |{ctx} "
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
