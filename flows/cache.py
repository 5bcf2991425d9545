"""Prefect caching with DVC's semantics: a stage's cache key is what dvc.lock records for it.

``StageInputs`` hashes, for one dvc.yaml stage, the contents of its deps (files and folders; the
code modules are deps too), the values of its params and its command, plus the effective tracking
URI for the stages that log to MLflow (an env var can move that store). It is a Prefect
``CachePolicy`` and is composed with Prefect's own ``TASK_SOURCE``: editing the task wrapper is
the flow's equivalent of editing a dvc.yaml ``cmd``. DVC and Prefect therefore invalidate the same
stages for the same edit (tests/pipeline/test_declaration.py checks it against DVC's own view).

Outputs are not part of the key (they are written by the stage); the flow checks that they still
exist before trusting a cache hit, as `dvc repro` does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import TASK_SOURCE, CachePolicy
from prefect.context import TaskRunContext

from har.io import content_digest
from har.pipeline import Stage
from har.tracking import tracking_uri

CACHE_VERSION = "2"


def stage_key(stage: Stage, p: Any) -> str:
    """The cache key of ``stage`` under params ``p`` (a har.config.Params)."""
    doc = {
        "v": CACHE_VERSION,
        "stage": stage.name,
        "cmd": stage.cmd,
        "deps": {str(dep): content_digest([dep]) for dep in stage.deps},
        "params": stage.param_values(p),
        # MLFLOW_TRACKING_URI (env) wins over tracking.uri: the store a result lives in is an input
        "tracking_uri": tracking_uri(p) if any(k.split(".")[0] == "tracking" for k in stage.params) else None,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class StageInputs(CachePolicy):
    """A task's key from its dvc.yaml stage: deps' contents, params values, command."""

    stage: Stage | None = None

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        if self.stage is None:
            return None
        return f"{self.stage.name}-{stage_key(self.stage, inputs['p'])}"


def stage_policy(stage: Stage) -> CachePolicy:
    return StageInputs(stage=stage) + TASK_SOURCE
