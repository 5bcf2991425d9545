"""Fit any model kind on raw windows; the result is a ``TrainedModel`` with its metadata."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_limits

from har.config import TrainParams
from har.models import build_model, get_model
from har.training.bundle import ModelMeta, TrainedModel
from har.training.loop import EpochCallback, class_weights, train_deep

if TYPE_CHECKING:
    from har.training.distributed import Rank


@dataclass
class FitReport:
    val_macro_f1: float
    best_epoch: int
    epochs_run: int
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def fit_model(tp: TrainParams, meta: ModelMeta, X_train: np.ndarray, y_train: np.ndarray,
              X_val: np.ndarray, y_val: np.ndarray, *, checkpoint_dir: Path | None = None,
              resume: bool = False, on_epoch: EpochCallback | None = None, epochs: int | None = None,
              show_progress: bool = True, rank: Rank | None = None) -> tuple[TrainedModel, FitReport]:
    """Train ``meta.model`` (named in params train.model) on training-subject windows.

    Deep models get their input standardisation fitted here, on ``X_train`` only; the classic
    model's features are scale-free enough for trees and need none. ``rank``: this process's place
    under torchrun (har.training.distributed); default: one process on train.device.
    """
    entry = get_model(meta.model)
    n_classes, n_ch = len(meta.classes), len(meta.channels)
    t0 = time.perf_counter()
    if entry.kind == "classic":
        clf = entry.build(tp.model_params(meta.model), meta.channels, meta.window_len, meta.rate_hz,
                          n_classes, tp.seed)
        w = class_weights(y_train, n_classes)[y_train] if tp.class_weighted else None
        # train.num_threads bounds every pool the fit uses (torch's, and the OpenMP threads of the
        # boosted trees), so one setting means the same for every model and Dask workers don't
        # oversubscribe the cores
        with threadpool_limits(limits=tp.num_threads):
            clf.fit(X_train, y_train, sample_weight=w)
        model = TrainedModel(meta, classic=clf)
        meta.n_params = int(clf.n_params)
        pred = clf.predict_proba(X_val).argmax(1)
        f1 = float(f1_score(y_val, pred, average="macro", labels=np.unique(y_val), zero_division=0))
        report = FitReport(f1, 1, 1, time.perf_counter() - t0,
                           [{"epoch": 1, "val_macro_f1": f1, "val_accuracy": float((pred == y_val).mean())}])
        if on_epoch is not None:
            on_epoch(1, {"val_macro_f1": f1})
        return model, report

    import torch

    from har.models._layers import n_parameters

    torch.manual_seed(tp.seed)  # the same seed gives the same initial weights
    net = build_model(meta.model, tp, n_ch, n_classes)
    flat = X_train.reshape(-1, n_ch).astype(np.float64)
    std = flat.std(axis=0)
    net.standardize.set(flat.mean(axis=0), np.where(std > 1e-8, std, 1.0))
    meta.n_params = n_parameters(net)
    result = train_deep(net, X_train, y_train, X_val, y_val, tp, meta.channels, n_classes,
                        checkpoint_dir=checkpoint_dir, resume=resume, on_epoch=on_epoch, epochs=epochs,
                        show_progress=show_progress, rank=rank)
    report = FitReport(result.best_val_macro_f1, result.best_epoch, result.epochs_run,
                       time.perf_counter() - t0, result.history)
    return TrainedModel(meta, net=net), report
