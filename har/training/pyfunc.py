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

    # no type hints here: MLflow would read them as an input schema and warn that they are not one
    def predict(self, context, model_input, params=None):
        return self.model.predict_proba(np.asarray(model_input, dtype=np.float32))
