"""The preprocess stage: recordings → windows, splits, label map, normaliser, statistics."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from har.contracts import (
    LABEL_MAP_FILE,
    NORMALIZER_FILE,
    PROCESSED_FILES,
    SPLITS_FILE,
    STATS_FILE,
    WINDOWS_FILE,
)
from har.data.own import channels_present
from har.preprocess.normalize import fit_normalizer
from har.preprocess.splits import check_no_leak, group_kfold, official_split
from har.preprocess.windows import make_windows, save_windows


def preprocess(recordings: pd.DataFrame, rate_hz: float, out_dir: Path, *, target_rate_hz: float,
               window_s: float, overlap: float, label_policy: Literal["majority", "drop_mixed"],
               min_purity: float, gravity_split: bool, gravity_cutoff_hz: float,
               classes: list[str], test_subjects: list[int], n_val: int, cv_folds: int,
               seed: int) -> dict:
    """Recordings → windows.npz, splits.json, label_map.json, normalizer.json, stats.json.

    Channels are acc_x..z plus gyro_x..z unless the gyro columns are all NaN. Everything is
    written into a temp dir inside ``out_dir`` first and only then moved into place, so a
    failure never leaves a half-written set of outputs. Returns the stats dict.
    """
    channels = channels_present(recordings)
    w = make_windows(recordings, rate_hz, target_rate_hz, window_s, overlap, label_policy,
                     min_purity, classes, channels, gravity_split, gravity_cutoff_hz)
    subjects = sorted(set(w.subject.tolist()))
    splits: dict = official_split(subjects, test_subjects, n_val, seed)
    check_no_leak(splits)
    folds = group_kfold(subjects, min(cv_folds, len(subjects)), seed) if cv_folds >= 2 else []
    for fold in folds:
        check_no_leak(fold)
    norm = fit_normalizer(w.X, np.isin(w.subject, splits["train"]), w.channels)
    split_of = {s: k for k, members in splits.items() for s in members}
    per_split = {k: int(np.isin(w.subject, v).sum()) for k, v in splits.items()}
    stats = {
        "n_windows": int(len(w.X)), "window_len": int(w.X.shape[1]), "channels": w.channels,
        "n_subjects": len(subjects), "windows_per_split": per_split,
        "windows_per_class": {c: int((w.y == i).sum()) for i, c in enumerate(classes)},
        "rate_hz": target_rate_hz,
    }
    # Assemble every output in a temp dir, then move them in: no half-written out_dir.
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".preprocess-", dir=out_dir))
    try:
        save_windows(w, tmp / WINDOWS_FILE)
        (tmp / SPLITS_FILE).write_text(json.dumps(
            {**splits, "folds": folds, "subject_split": {str(k): v for k, v in split_of.items()}},
            indent=2))
        (tmp / LABEL_MAP_FILE).write_text(json.dumps({"classes": classes}, indent=2))
        (tmp / NORMALIZER_FILE).write_text(norm.to_json())
        (tmp / STATS_FILE).write_text(json.dumps(stats, indent=2))
        for name in PROCESSED_FILES:
            os.replace(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return stats
