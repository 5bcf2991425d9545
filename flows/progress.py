"""Progress people can watch in the Prefect UI: a progress artifact that follows training epochs or
cross-validation folds.

har's training loop and CV protocol take plain callbacks (``on_epoch(epoch, metrics)``,
``on_fold(row)``); the reporters here are such callbacks, so Prefect stays on the flow side and har
knows nothing of it. Each reporter creates its artifact at 0 % inside the running flow or task run
(where it shows under the run's Artifacts tab) and moves it on with every call; ``finish`` sets
100 % when a run ends early (early stopping stops before ``train.epochs``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

TRAINING_KEY = "training-progress"
CV_KEY = "cv-progress"


@dataclass
class ProgressReport:
    """One Prefect progress artifact counting ``done`` of ``total`` steps (epochs, folds)."""

    key: str
    total: int
    what: str  # "epoch", "fold": the description's noun
    title: str
    done: int = 0
    artifact_id: UUID | None = field(default=None, init=False)

    def start(self) -> ProgressReport:
        self.artifact_id = create_progress_artifact(0.0, key=self.key,
                                                    description=f"{self.title}: 0/{self.total} {self.what}s")
        return self

    def update(self, done: int, note: str = "") -> None:
        if self.artifact_id is None:
            self.start()
        self.done = min(done, self.total)
        text = f"{self.title}: {self.what} {self.done}/{self.total}" + (f", {note}" if note else "")
        update_progress_artifact(self.artifact_id, progress=100.0 * self.done / max(self.total, 1),
                                 description=text)

    def finish(self, note: str = "") -> None:
        """100 %: the run is over, also when it ended before ``total`` (early stopping)."""
        if self.artifact_id is None:
            self.start()
        text = f"{self.title}: done after {self.done} {self.what}s" + (f", {note}" if note else "")
        update_progress_artifact(self.artifact_id, progress=100.0, description=text)


def epoch_reporter(total_epochs: int, model: str) -> tuple[ProgressReport,
                                                            Callable[[int, dict[str, float]], None]]:
    """(report, on_epoch callback) for ``har.stages.model.train``: one step per epoch, with the
    epoch's validation macro-F1 in the description."""
    report = ProgressReport(TRAINING_KEY, total_epochs, "epoch", f"training {model}").start()

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        f1 = metrics.get("val_macro_f1")
        report.update(epoch, "" if f1 is None else f"val macro-F1 {f1:.3f}")

    return report, on_epoch


def fold_reporter(total_folds: int, models: list[str]) -> tuple[ProgressReport,
                                                               Callable[[dict[str, Any]], None]]:
    """(report, on_fold callback) for ``har.stages.model.evaluate_cv`` (or
    ``har.evaluation.cv.cross_validate``): one step per finished (model, fold)."""
    report = ProgressReport(CV_KEY, total_folds * len(models), "fold",
                            f"subject CV of {', '.join(models)}").start()

    def on_fold(row: dict[str, Any]) -> None:
        report.update(report.done + 1, f"last: {row['model']} fold {row['fold']} "
                                       f"macro-F1 {row['macro_f1']:.3f}")

    return report, on_fold
