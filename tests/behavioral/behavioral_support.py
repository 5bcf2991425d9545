"""What the behavioural tests share with their fixture (a plain module: test folders are not
packages, and importing from a conftest would depend on which conftest Python finds first)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from har.config import AugmentParams
from har.training.bundle import TrainedModel


@dataclass
class Behaviour:
    model: TrainedModel
    X: np.ndarray  # test-subject windows, raw physical units (n, T, 6)
    y: np.ndarray
    channel_std: np.ndarray  # per-channel std of the training windows (jitter's unit)
    augment: AugmentParams  # what the model was trained with

    def agreement(self, X_perturbed: np.ndarray) -> float:
        """Share of windows whose predicted class is unchanged by the perturbation."""
        before = self.model.predict_proba(self.X).argmax(1)
        after = self.model.predict_proba(X_perturbed.astype(np.float32)).argmax(1)
        return float((before == after).mean())
