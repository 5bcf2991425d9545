"""The classic model as an MLflow pyfunc: raw windows in, class probabilities out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np


class ClassicPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from har.models.classic import ClassicModel

        self.model = ClassicModel.load(Path(context.artifacts["model"]))

    def predict(self, context: Any, model_input: Any, params: dict | None = None) -> np.ndarray:
        return self.model.predict_proba(np.asarray(model_input, dtype=np.float32))
