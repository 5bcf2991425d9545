"""Promotion gate and rollback against a real SQLite-backed MLflow registry."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import onnx
import pytest
from mlflow import MlflowClient
from onnx import TensorProto, helper

from har.config import RegistryParams
from har.registry.gate import (
    CHALLENGER,
    CHAMPION,
    POLICIES,
    RegistryError,
    policy_mode,
    promote,
    register_version,
    rollback,
)

NAME = "har-activity"
GOOD = {"parity_max_abs_diff": 1e-6, "latency_p50_ms": 0.1}


def _tiny_onnx() -> onnx.ModelProto:
    node = helper.make_node("Identity", ["window"], ["probs"])
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 2]) for n in ("window", "probs")]
    graph = helper.make_graph([node], "g", io[:1], io[1:])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_ENABLE_TELEMETRY", "false")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.create_experiment("gate", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    return MlflowClient(uri, uri)


def _candidate(client: MlflowClient, metrics: dict[str, float], subjects: str = "[2, 4]") -> str:
    with mlflow.start_run() as run:
        mlflow.log_metrics(metrics)
        info = mlflow.onnx.log_model(_tiny_onnx(), name="onnx", pip_requirements=["onnxruntime"])
    reg = register_version(client, NAME, info.model_uri, run.info.run_id, {"test_subjects": subjects})
    assert reg.created
    return reg.version


def _alias(client: MlflowClient, alias: str) -> str:
    return str(client.get_model_version_by_alias(NAME, alias).version)


def _tags(client: MlflowClient, version: str) -> dict[str, str]:
    return client.get_model_version(NAME, version).tags


def test_first_version_becomes_champion(client: MlflowClient) -> None:
    v1 = _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    assert _alias(client, CHALLENGER) == v1
    d = promote(client, NAME, RegistryParams())
    assert d.promoted and d.champion_before is None
    assert _alias(client, CHAMPION) == v1
    tags = _tags(client, v1)
    assert tags["promotion.decision"] == "promoted"
    assert "first champion" in json.loads(tags["promotion.reasons"])[0]


def test_better_worse_equal(client: MlflowClient) -> None:
    gates = RegistryParams(margin=0.01)
    v1 = _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    assert promote(client, NAME, gates).promoted

    worse = _candidate(client, {"test_macro_f1": 0.75, **GOOD})
    d = promote(client, NAME, gates)
    assert not d.promoted and d.version == worse and _alias(client, CHAMPION) == v1
    assert "does not beat champion v1 (0.8000)" in d.reasons[0]
    assert _tags(client, worse)["promotion.decision"] == "rejected"
    assert _alias(client, CHALLENGER) == worse  # a rejected challenger keeps its alias

    within_margin = _candidate(client, {"test_macro_f1": 0.805, **GOOD})
    assert not promote(client, NAME, gates).promoted
    assert _alias(client, CHAMPION) == v1

    better = _candidate(client, {"test_macro_f1": 0.85, **GOOD})
    d = promote(client, NAME, gates)
    assert d.promoted and d.champion_before == v1 and d.champion_macro_f1 == pytest.approx(0.80)
    assert _alias(client, CHAMPION) == better
    assert within_margin != better


def test_equal_score_is_not_promoted(client: MlflowClient) -> None:
    _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    promote(client, NAME, RegistryParams())
    v2 = _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    d = promote(client, NAME, RegistryParams(margin=0.0))
    assert not d.promoted and _alias(client, CHAMPION) == "1"
    assert json.loads(_tags(client, v2)["promotion.reasons"]) == d.reasons


@pytest.mark.parametrize(("metrics", "reason"), [
    ({"test_macro_f1": 0.55, **GOOD}, "below the minimum 0.6000"),
    ({"test_macro_f1": 0.90, "parity_max_abs_diff": 3e-3, "latency_p50_ms": 0.1}, "ONNX parity"),
    ({"test_macro_f1": 0.90, "parity_max_abs_diff": 1e-6, "latency_p50_ms": 9.0}, "latency"),
    ({"test_macro_f1": 0.90}, "no ONNX parity check recorded"),
])
def test_failing_gate_changes_nothing(client: MlflowClient, metrics: dict, reason: str) -> None:
    v1 = _candidate(client, {"test_macro_f1": 0.70, **GOOD})
    promote(client, NAME, RegistryParams())
    before = client.get_registered_model(NAME).tags
    bad = _candidate(client, metrics)
    d = promote(client, NAME, RegistryParams())
    assert not d.promoted and any(reason in r for r in d.reasons), d.reasons
    assert _alias(client, CHAMPION) == v1
    assert client.get_registered_model(NAME).tags == before
    assert _tags(client, bad)["promotion.decision"] == "rejected"


def test_other_test_subjects_are_not_comparable(client: MlflowClient) -> None:
    _candidate(client, {"test_macro_f1": 0.70, **GOOD}, subjects="[2, 4]")
    promote(client, NAME, RegistryParams())
    _candidate(client, {"test_macro_f1": 0.95, **GOOD}, subjects="[9, 10]")
    d = promote(client, NAME, RegistryParams())
    assert not d.promoted and "not comparable" in d.reasons[0]
    # ...unless the champion can be re-scored on the challenger's test windows
    d = promote(client, NAME, RegistryParams(), champion_score=lambda mv: 0.72)
    assert d.promoted and d.champion_macro_f1 == 0.72


def test_rollback(client: MlflowClient) -> None:
    with pytest.raises(RegistryError, match="no champion to roll back"):
        _candidate(client, {"test_macro_f1": 0.70, **GOOD})
        rollback(client, NAME)
    promote(client, NAME, RegistryParams())
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(client, NAME)
    _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    promote(client, NAME, RegistryParams())
    _candidate(client, {"test_macro_f1": 0.90, **GOOD})
    promote(client, NAME, RegistryParams())
    assert _alias(client, CHAMPION) == "3"
    assert rollback(client, NAME).version == "2"
    assert _alias(client, CHAMPION) == "2"
    assert "promotion.rolled_back" in _tags(client, "3")
    assert rollback(client, NAME).version == "1"
    with pytest.raises(RegistryError):
        rollback(client, NAME)


def test_no_challenger(client: MlflowClient) -> None:
    with pytest.raises(RegistryError, match="no version has alias 'challenger'"):
        promote(client, NAME, RegistryParams())


# ------------------------------------------------------------------------------------------------
# Promotion policy: only `har promote`/the schedule (gate) and a first champion (initial) move it


@pytest.mark.parametrize(("policy", "champion", "dry_run", "note"), [
    ("gate", None, False, "policy gate"),
    ("gate", "3", False, "policy gate"),
    ("initial", None, False, "no champion yet"),
    ("initial", "3", True, "champion v3 exists and stays"),
    ("dry-run", None, True, "only the verdict is recorded"),
    ("dry-run", "3", True, "only the verdict is recorded"),
])
def test_policy_mode(policy: str, champion: str | None, dry_run: bool, note: str) -> None:
    mode = policy_mode(policy, champion)
    assert mode.dry_run is dry_run and note in mode.note
    assert policy in POLICIES


@pytest.mark.parametrize("policy", ["Gate", "dry_run", ""])
def test_unknown_policy_is_an_error_naming_the_choices(client: MlflowClient, policy: str) -> None:
    with pytest.raises(RegistryError, match="must be one of gate, initial, dry-run"):
        policy_mode(policy, None)
    _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    with pytest.raises(RegistryError, match="must be one of"):
        promote(client, NAME, RegistryParams(), policy=policy)
    assert "promotion.decision" not in _tags(client, "1")  # nothing was decided


def test_initial_on_an_empty_registry_promotes(client: MlflowClient) -> None:
    v1 = _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    d = promote(client, NAME, RegistryParams(), policy="initial")
    assert d.promoted and d.passed and not d.dry_run and _alias(client, CHAMPION) == v1
    assert _tags(client, v1)["promotion.decision"] == "promoted"
    assert _tags(client, v1)["promotion.policy"] == "initial"


def test_initial_with_a_champion_only_tags_the_verdict(client: MlflowClient) -> None:
    """What `dvc exp run` does: the gate's verdict is recorded, the champion stays."""
    v1 = _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    promote(client, NAME, RegistryParams(), policy="initial")
    history = client.get_registered_model(NAME).tags["champion_history"]

    better = _candidate(client, {"test_macro_f1": 0.90, **GOOD})
    d = promote(client, NAME, RegistryParams(), policy="initial")
    assert d.dry_run and d.passed and not d.promoted and d.champion_before == v1
    assert _alias(client, CHAMPION) == v1 and _alias(client, CHALLENGER) == better
    tags = _tags(client, better)
    assert tags["promotion.decision"] == "dry-run: would promote"
    assert tags["promotion.policy"] == "initial"
    assert "beat champion v1" in json.loads(tags["promotion.reasons"])[0]

    worse = _candidate(client, {"test_macro_f1": 0.70, **GOOD})
    d = promote(client, NAME, RegistryParams(), policy="initial")
    assert d.dry_run and not d.passed and not d.promoted
    assert _tags(client, worse)["promotion.decision"] == "dry-run: would reject"
    assert "does not beat champion v1" in json.loads(_tags(client, worse)["promotion.reasons"])[0]
    assert _alias(client, CHAMPION) == v1
    assert client.get_registered_model(NAME).tags["champion_history"] == history

    # an explicit `har promote` (policy gate) of the better version moves the champion
    d = promote(client, NAME, RegistryParams(), version=better)
    assert d.promoted and not d.dry_run and _alias(client, CHAMPION) == better
    assert _tags(client, better)["promotion.decision"] == "promoted"
    assert _tags(client, better)["promotion.policy"] == "gate"


def test_dry_run_keeps_gated_decisions_and_the_champions_tags(client: MlflowClient) -> None:
    v1 = _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    promote(client, NAME, RegistryParams())
    champion_tags = _tags(client, v1)
    v2 = _candidate(client, {"test_macro_f1": 0.70, **GOOD})
    assert not promote(client, NAME, RegistryParams()).promoted
    rejected_tags = _tags(client, v2)

    for version in (v1, v2):
        d = promote(client, NAME, RegistryParams(), version=version, policy="dry-run")
        assert d.dry_run and not d.passed and not d.promoted
    assert _tags(client, v1) == champion_tags  # still says why it became champion
    assert _tags(client, v2) == rejected_tags  # a dry run never overwrites a gated decision
    # re-gating the champion itself decides nothing and keeps its tags too
    d = promote(client, NAME, RegistryParams(), version=v1)
    assert not d.promoted and "already the champion" in d.reasons[0]
    assert _tags(client, v1) == champion_tags and _alias(client, CHAMPION) == v1


def test_unknown_version_is_a_registry_error(client: MlflowClient) -> None:
    _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    with pytest.raises(RegistryError, match="no version '7'; expected an existing version"):
        promote(client, NAME, RegistryParams(), version="7")


# ------------------------------------------------------------------------------------------------
# Idempotent registration


def _versions(client: MlflowClient) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{NAME}'"))


def test_registering_the_same_run_twice_makes_one_version(client: MlflowClient) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metrics({"test_macro_f1": 0.8, **GOOD})
        info = mlflow.onnx.log_model(_tiny_onnx(), name="onnx", pip_requirements=["onnxruntime"])
    run_id = run.info.run_id
    first = register_version(client, NAME, info.model_uri, run_id, {}, digest="a" * 64)
    assert first.created and first.version == "1"
    assert _tags(client, "1")["onnx_sha256"] == "a" * 64
    other = _candidate(client, {"test_macro_f1": 0.7, **GOOD})  # challenger moves on to v2
    assert other == "2"

    again = register_version(client, NAME, info.model_uri, run_id, {}, digest="a" * 64)
    assert (again.version, again.created) == ("1", False)
    assert _versions(client) == ["1", "2"]
    assert _alias(client, CHALLENGER) == "2"  # an existing version moves no alias
    # without a digest the model URI alone identifies it
    assert register_version(client, NAME, info.model_uri, run_id, {}) == again

    # the same run exported again: a new model URI, but the same ONNX bytes → the same version
    with mlflow.start_run(run_id=run_id):
        reexport = mlflow.onnx.log_model(_tiny_onnx(), name="onnx", pip_requirements=["onnxruntime"])
    assert reexport.model_uri != info.model_uri
    same = register_version(client, NAME, reexport.model_uri, run_id, {}, digest="a" * 64)
    assert (same.version, same.created) == ("1", False)
    # ...different bytes are a different model of that run: a new version, now the challenger
    changed = register_version(client, NAME, reexport.model_uri, run_id, {}, digest="b" * 64)
    assert (changed.version, changed.created) == ("3", True)
    assert _versions(client) == ["1", "2", "3"] and _alias(client, CHALLENGER) == "3"


# ------------------------------------------------------------------------------------------------
# Re-running after a crash between MLflow calls (the states a `kill -9` leaves, made with the real
# client; tests/integration/test_kill_register.py kills a real `har register` in these windows)


def _logged_model(client: MlflowClient, f1: float) -> tuple[str, str]:
    with mlflow.start_run() as run:
        mlflow.log_metrics({"test_macro_f1": f1, **GOOD})
        info = mlflow.onnx.log_model(_tiny_onnx(), name="onnx", pip_requirements=["onnxruntime"])
    return info.model_uri, run.info.run_id


def test_a_registration_interrupted_before_its_alias_is_finished_by_the_rerun(client: MlflowClient) -> None:
    v1 = _candidate(client, {"test_macro_f1": 0.8, **GOOD})
    uri, run_id = _logged_model(client, 0.9)
    # the version exists, the process died before `challenger` moved to it
    mlflow.register_model(uri, NAME, tags={"run_id": run_id, "test_subjects": "[2, 4]"})
    assert _versions(client) == ["1", "2"] and _alias(client, CHALLENGER) == v1

    again = register_version(client, NAME, uri, run_id, {})
    assert (again.version, again.created, again.completed) == ("2", False, True)
    assert _alias(client, CHALLENGER) == "2" and _versions(client) == ["1", "2"]
    assert register_version(client, NAME, uri, run_id, {}).completed is False  # finished once


def test_an_interrupted_first_registration_has_no_challenger_yet(client: MlflowClient) -> None:
    uri, run_id = _logged_model(client, 0.9)
    mlflow.register_model(uri, NAME, tags={"run_id": run_id})
    assert register_version(client, NAME, uri, run_id, {}).completed
    assert _alias(client, CHALLENGER) == "1"
    assert promote(client, NAME, RegistryParams()).promoted  # `har promote` finds its challenger


def _history_tag(client: MlflowClient) -> list[str]:
    return json.loads(client.get_registered_model(NAME).tags.get("champion_history", "[]"))


def test_a_promotion_interrupted_before_its_history_is_repaired(client: MlflowClient) -> None:
    v1 = _candidate(client, {"test_macro_f1": 0.80, **GOOD})
    client.set_registered_model_alias(NAME, CHAMPION, v1)  # the alias moved, then the process died
    assert _history_tag(client) == []
    # the rerun (policy initial: a champion exists, so a dry run) writes the missing entry
    d = promote(client, NAME, RegistryParams(), version=v1, policy="initial")
    assert "already the champion" in d.reasons[0] and _history_tag(client) == [v1]
    v2 = _candidate(client, {"test_macro_f1": 0.90, **GOOD})
    assert promote(client, NAME, RegistryParams()).promoted and _history_tag(client) == [v1, v2]
    assert rollback(client, NAME).version == v1  # without the repair: "no previous champion"


def test_a_rollback_interrupted_before_its_history_never_brings_back_the_rolled_back(
        client: MlflowClient) -> None:
    for f1 in (0.70, 0.80, 0.90):
        _candidate(client, {"test_macro_f1": f1, **GOOD})
        promote(client, NAME, RegistryParams())
    assert _history_tag(client) == ["1", "2", "3"]
    client.set_registered_model_alias(NAME, CHAMPION, "2")  # rollback 3 → 2 died before the history
    _candidate(client, {"test_macro_f1": 0.95, **GOOD})
    assert promote(client, NAME, RegistryParams()).promoted
    assert _history_tag(client) == ["1", "2", "4"]
    assert rollback(client, NAME).version == "2"  # not 3, the version that was rolled back
    assert rollback(client, NAME).version == "1"
