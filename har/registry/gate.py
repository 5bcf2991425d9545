"""Registry operations on ``har-activity``: aliases ``challenger`` and ``champion``.

Promotion moves ``champion`` only when the challenger passes every gate (minimum macro-F1, ONNX
parity, latency budget) and beats the champion's macro-F1 on the same test subjects by more than
the margin. The decision and its reasons are tags on the challenger version either way; a failed
gate moves no alias. The registered model keeps ``champion_history`` so ``rollback`` can return
to the previous champion.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from har.config import RegistryParams
from har.errors import HarError

CHALLENGER, CHAMPION = "challenger", "champion"
HISTORY_TAG = "champion_history"


class RegistryError(HarError):
    """A registry operation cannot be carried out (no challenger, nothing to roll back to, ...)."""


@dataclass
class Decision:
    promoted: bool
    version: str
    champion_before: str | None
    reasons: list[str] = field(default_factory=list)
    challenger_macro_f1: float | None = None
    champion_macro_f1: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def client_for(uri: str | None = None):  # noqa: ANN201 - MlflowClient
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _alias_version(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def register_version(client: Any, name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
    """Register ``model_uri`` as a new version of ``name`` and point ``challenger`` at it."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Human activity recognition (har) models; "
                                       "aliases: champion = served, challenger = newest candidate.")
    mv = mlflow.register_model(model_uri, name, tags={**tags, "run_id": run_id})
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    return str(mv.version)


def version_metrics(client: Any, mv: Any) -> dict[str, float]:
    return dict(client.get_run(mv.run_id).data.metrics) if mv.run_id else {}


def gate_failures(metrics: dict[str, float], gates: RegistryParams) -> list[str]:
    """Every absolute gate the metrics fail, as readable reasons (empty = all passed)."""
    failures = []
    f1 = metrics.get("test_macro_f1")
    if f1 is None:
        failures.append("no test_macro_f1 recorded: run `har evaluate` first")
    elif f1 < gates.min_macro_f1:
        failures.append(f"macro-F1 {f1:.4f} below the minimum {gates.min_macro_f1:.4f}")
    diff = metrics.get("parity_max_abs_diff")
    if diff is None:
        failures.append("no ONNX parity check recorded: run `har export` first")
    elif diff > gates.max_parity_diff:
        failures.append(f"ONNX parity max abs diff {diff:.2e} above {gates.max_parity_diff:.0e}")
    lat = metrics.get("latency_p50_ms")
    if lat is None:
        failures.append("no latency measured: run `har export` first")
    elif lat > gates.latency_budget_ms:
        failures.append(f"batch-1 p50 latency {lat:.3f} ms above the budget {gates.latency_budget_ms} ms")
    return failures


def _history(client: Any, name: str) -> list[str]:
    tags = client.get_registered_model(name).tags
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def promote(client: Any, name: str, gates: RegistryParams, version: str | None = None,
            champion_score: Callable[[Any], float | None] | None = None) -> Decision:
    """Gate the challenger (or ``version``) against the champion; move ``champion`` if it wins.

    ``champion_score`` re-scores the champion on the challenger's test windows (same subjects by
    construction); without it, or when it returns None, the champion's recorded test macro-F1 is
    used, and only if it was measured on the same test subjects.
    """
    if version is None:
        mv = _alias_version(client, name, CHALLENGER)
        if mv is None:
            raise RegistryError(f"{name}: no version has alias '{CHALLENGER}'; run `har register` first")
    else:
        mv = client.get_model_version(name, str(version))
    metrics = version_metrics(client, mv)
    reasons = gate_failures(metrics, gates)
    champ = _alias_version(client, name, CHAMPION)
    decision = Decision(False, str(mv.version), str(champ.version) if champ else None,
                        challenger_macro_f1=metrics.get("test_macro_f1"))
    if champ is not None and str(champ.version) == str(mv.version):
        reasons.append(f"version {mv.version} is already the champion")
    elif champ is not None:
        champ_f1 = champion_score(champ) if champion_score else None
        if champ_f1 is None:
            same = champ.tags.get("test_subjects") == mv.tags.get("test_subjects")
            champ_f1 = version_metrics(client, champ).get("test_macro_f1") if same else None
            if not same:
                reasons.append(f"champion v{champ.version} was tested on subjects "
                               f"{champ.tags.get('test_subjects')}, the challenger on "
                               f"{mv.tags.get('test_subjects')}: not comparable")
        decision.champion_macro_f1 = champ_f1
        chal_f1 = metrics.get("test_macro_f1")
        if champ_f1 is not None and chal_f1 is not None and not chal_f1 > champ_f1 + gates.margin:
            reasons.append(f"macro-F1 {chal_f1:.4f} does not beat champion v{champ.version} "
                           f"({champ_f1:.4f}) by more than the margin {gates.margin}")
    decision.promoted = not reasons
    decision.reasons = reasons or ["passed all gates" + (
        f" and beat champion v{champ.version}" if champ is not None else "; first champion")]
    tags = {"promotion.decision": "promoted" if decision.promoted else "rejected",
            "promotion.reasons": json.dumps(decision.reasons),
            "promotion.champion_before": decision.champion_before or "",
            "promotion.time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if decision.champion_macro_f1 is not None:
        tags["promotion.champion_macro_f1"] = f"{decision.champion_macro_f1:.6f}"
    for key, value in tags.items():
        client.set_model_version_tag(name, mv.version, key, value)
    if decision.promoted:
        history = _history(client, name)
        client.set_registered_model_alias(name, CHAMPION, mv.version)
        client.set_registered_model_tag(name, HISTORY_TAG, json.dumps([*history, str(mv.version)]))
    return decision


def rollback(client: Any, name: str) -> Decision:
    """Point ``champion`` back at the previous champion; error if there is none."""
    history = _history(client, name)
    champ = _alias_version(client, name, CHAMPION)
    if champ is None:
        raise RegistryError(f"{name}: there is no champion to roll back")
    if history and history[-1] == str(champ.version):
        history = history[:-1]
    if not history:
        raise RegistryError(f"{name}: champion v{champ.version} has no previous champion to return to")
    previous = history[-1]
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    client.set_model_version_tag(name, champ.version, "promotion.rolled_back", stamp)
    return Decision(True, previous, str(champ.version), [f"rolled back from v{champ.version} to v{previous}"])
