"""Load the preprocess contract (windows.npz, splits.json, label_map.json) and check it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from har.contracts import LABEL_MAP_FILE, SPLITS_FILE, WINDOWS_FILE
from har.errors import DataError
from har.preprocess.windows import Windows, load_windows


@dataclass
class SplitData:
    windows: Windows
    classes: list[str]
    splits: dict[str, list[int]]

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        mask = np.isin(self.windows.subject, self.splits[name])
        return self.windows.X[mask], self.windows.y[mask]


def load_split_data(processed_dir: Path, classes: list[str]) -> SplitData:
    """Windows + splits + label map, with the checks that make a bad input a clear error."""
    paths = {n: processed_dir / n for n in (WINDOWS_FILE, SPLITS_FILE, LABEL_MAP_FILE)}
    for name, path in paths.items():
        if not path.is_file():
            raise DataError(f"{path}: missing; run `har preprocess` first ({name} is its output)")
    try:
        w = load_windows(paths[WINDOWS_FILE])
    except (KeyError, ValueError, OSError) as e:
        raise DataError(f"{paths[WINDOWS_FILE]}: not a windows file ({e})") from None
    stored = json.loads(paths[LABEL_MAP_FILE].read_text()).get("classes")
    if stored != classes:
        raise DataError(f"{paths[LABEL_MAP_FILE]}: classes {stored} differ from params "
                        f"preprocess.classes {classes}; re-run `har preprocess`")
    bad = (w.y < 0) | (w.y >= len(classes))
    if bad.any():
        raise DataError(f"{paths[WINDOWS_FILE]}: {int(bad.sum())} windows have a class index outside "
                        f"0..{len(classes) - 1} (e.g. {int(w.y[bad][0])}); expected the classes of "
                        f"{paths[LABEL_MAP_FILE]}")
    if w.X.ndim != 3 or w.X.shape[2] != len(w.channels):
        raise DataError(f"{paths[WINDOWS_FILE]}: windows have {w.X.shape[2] if w.X.ndim == 3 else '?'} "
                        f"channels but the file names {len(w.channels)}: {w.channels}")
    splits = json.loads(paths[SPLITS_FILE].read_text())
    for key in ("train", "val", "test"):
        if key not in splits:
            raise DataError(f"{paths[SPLITS_FILE]}: no '{key}' subject list")
    return SplitData(w, classes, {k: splits[k] for k in ("train", "val", "test")})
