"""Stage entry points: typed params in, stage functions called, contract files out.

One function per dvc.yaml stage, of the same name (``STAGES``), split by concern: ``data`` (fetch
→ validate windows), ``model`` (train, evaluate, export) and ``registry`` (register, promote,
rollback). The CLI, `dvc repro` (whose commands are `har …`), `har run` and the Prefect flow all call
these, and they hold no stage logic of their own: only the mapping from params.yaml sections onto
the pure functions of each stage package, plus MLflow logging through ``har.tracking``. Each
returns a dict whose ``summary`` is the stage's one-line outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from har.config import Params
from har.stages import data, model, registry

StageFunction = Callable[[Params], dict[str, Any]]

# dvc.yaml stage name → the function its `har` command runs (tests check both agree)
STAGES: dict[str, StageFunction] = {
    "fetch": data.fetch,
    "ingest": data.ingest,
    "validate": data.validate,
    "preprocess": data.preprocess,
    "validate_windows": data.validate_windows,
    "train": model.train,
    "evaluate": model.evaluate,
    "export": model.export,
    "register": registry.register,
}

__all__ = ["STAGES", "StageFunction", "data", "model", "registry"]
