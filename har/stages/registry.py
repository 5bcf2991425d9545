"""Registry stages: register (then promote under registry.promotion_policy), promote, rollback.

The decisions themselves are pure functions in har.registry.gate; these map params onto them and
read or write the live MLflow registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow

from har import tracking
from har.config import Params
from har.contracts import ONNX_INPUT, ONNX_OUTPUT, WindowSpec
from har.data.registry import get_dataset
from har.errors import DataError
from har.evaluation.metrics import classification_metrics
from har.export.onnx import read_metadata, session
from har.io import write_json
from har.logging import get_logger
from har.registry import gate
from har.registry.card import CARD_ARTIFACT, CardInputs, model_card
from har.training.data import load_split_data

log = get_logger(__name__)


def register(p: Params) -> dict[str, Any]:
    """Register the exported ONNX model as a new version of registry.model_name (alias challenger),
    then gate it under registry.promotion_policy (``initial``: only an empty registry's first
    version becomes champion; experiments never move it).

    Idempotent: if this run's exported model is already a version, that version is returned with
    ``created: False`` and nothing in the registry changes.
    """
    path = p.export.report_path
    if not path.is_file():
        raise DataError(f"{path}: missing; run `har export` first")
    exp = json.loads(path.read_text())
    refused = gate.quantization_failures(exp, p.registry)
    if refused:
        raise gate.RegistryError(f"{path}: not registered: {'; '.join(refused)}")
    tracking.setup_mlflow(p)
    client = tracking.client(p)
    tracking.check_model_artifacts(exp["model_uri"], tracking.tracking_uri(p))
    run = client.get_run(exp["run_id"])
    tags = {k: run.data.tags[k] for k in ("git_commit", "data_digest", "model", "test_subjects")
            if k in run.data.tags}
    # an export report from before digests were logged matches by model URI alone
    reg = gate.register_version(client, p.registry.model_name, exp["model_uri"], exp["run_id"], tags,
                                digest=exp.get(gate.DIGEST_TAG))
    result = {"name": p.registry.model_name, "version": reg.version, "run_id": exp["run_id"],
              "created": reg.created, "completed": reg.completed}
    write_json(p.registry.report_path, result)
    log.info("%s", gate.registration_line(result))
    decision = promote(p, str(reg.version), p.registry.promotion_policy)
    return {**result, "promotion": decision,
            "summary": f"{gate.registration_line(result)}; {gate.promotion_line(decision)}"}


def champion_scorer(p: Params) -> Callable[[Any], float | None]:
    """Re-score a champion's ONNX on the current test windows: the same subjects by construction."""

    def score(mv: Any) -> float | None:
        pp = p.preprocess
        data = load_split_data(pp.out_dir, pp.classes)
        X, y = data.part("test")
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{p.registry.model_name}/{mv.version}"))
        onnx_path = next(local.rglob("*.onnx"), None)
        if onnx_path is None:
            return None
        try:
            spec = WindowSpec.from_metadata(read_metadata(onnx_path))
        except ValueError:
            return None
        if (spec.channels, spec.window_len, spec.classes) != (data.windows.channels, X.shape[1], pp.classes):
            return None  # a different window spec: fall back to the recorded metric
        probs = session(onnx_path, threads=2).run([ONNX_OUTPUT], {ONNX_INPUT: X})[0]
        return float(classification_metrics(y, probs.argmax(1), pp.classes)["macro_f1"])

    return score


def promote(p: Params, version: str | None = None, policy: str = "gate") -> dict[str, Any]:
    """Gate the challenger (or VERSION) under ``policy`` (gate | initial | dry-run, see
    har.registry.gate.policy_mode); alias champion moves only on a gated pass. Tags say why."""
    gate.policy_mode(policy, None)  # an unknown policy is an error before MLflow is touched
    tracking.setup_mlflow(p)
    decision = gate.promote(tracking.client(p), p.registry.model_name, p.registry, version=version,
                            champion_score=champion_scorer(p), policy=policy).to_dict()
    path = p.registry.report_path
    previous = json.loads(path.read_text()) if path.is_file() else {}
    write_json(path, {**previous, "name": p.registry.model_name, "promotion": decision})
    log.info("%s %s", p.registry.model_name, gate.promotion_line(decision))
    write_model_card(p, decision["version"], decision)
    return decision


def write_model_card(p: Params, version: str, decision: dict[str, Any]) -> str:
    """The version's model card (har.registry.card) as its description in the registry and as
    ``model_card.md`` in its run's artifacts; rewritten whenever the gate decides again."""
    client = tracking.client(p)
    name = p.registry.model_name
    mv = client.get_model_version(name, version)
    run = client.get_run(mv.run_id)
    tags, metrics = run.data.tags, run.data.metrics
    spec = get_dataset(p.data.source)

    def listed(key: str) -> list[Any]:
        return json.loads(tags.get(key, "[]"))

    card = model_card(CardInputs(
        name=name, version=str(version), model_type=tags.get("model", "unknown"), run_id=mv.run_id,
        classes=listed("classes") or p.preprocess.classes, channels=listed("channels"),
        rate_hz=float(tags.get("rate_hz", p.preprocess.target_rate_hz)),
        window_s=float(tags.get("window_s", p.preprocess.window_s)),
        overlap=float(tags.get("overlap", p.preprocess.overlap)),
        n_params=int(metrics.get("final_n_params", 0)), train_subjects=listed("train_subjects"),
        val_subjects=listed("val_subjects"), test_subjects=listed("test_subjects"), dataset=spec.name,
        dataset_licence=spec.licence, dataset_citation=spec.citation,
        metrics={k: v for k, v in metrics.items() if k.startswith("test_")}, promotion=decision,
        data_digest=tags.get("data_digest", ""), git_commit=tags.get("git_commit", "")))
    client.update_model_version(name, version, description=card)
    client.log_text(mv.run_id, card, CARD_ARTIFACT)
    return card


def rollback(p: Params) -> dict[str, Any]:
    """Return alias champion to the previous champion."""
    tracking.setup_mlflow(p)
    return gate.rollback(tracking.client(p), p.registry.model_name).to_dict()
