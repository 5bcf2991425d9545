"""Per-channel standardisation fitted on training subjects only."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np


@dataclass
class Normalizer:
    mean: np.ndarray  # (C,)
    std: np.ndarray  # (C,)
    channels: list[str]

    def apply(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.std).astype(np.float32)

    def to_json(self) -> str:
        return json.dumps({"channels": self.channels, "mean": self.mean.tolist(),
                           "std": self.std.tolist()}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Normalizer:
        d = json.loads(text)
        return cls(np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64),
                   list(d["channels"]))


def fit_normalizer(X: np.ndarray, mask: np.ndarray,
                   channels: list[str] | None = None) -> Normalizer:
    """Per-channel mean/std over the windows selected by ``mask`` (training subjects only)."""
    mask = np.asarray(mask, bool)
    if mask.shape != (len(X),):
        raise ValueError(f"normaliser: mask shape {mask.shape} does not match {len(X)} windows")
    if not mask.any():
        raise ValueError("normaliser: no training windows to fit on")
    sub = X[mask].reshape(-1, X.shape[2]).astype(np.float64)
    std = sub.std(axis=0)
    names = list(channels) if channels is not None else [f"ch{i}" for i in range(X.shape[2])]
    return Normalizer(sub.mean(axis=0), np.where(std > 1e-8, std, 1.0), names)
