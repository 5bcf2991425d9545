"""Registry operations on ``har-activity``: aliases ``challenger`` and ``champion``.

Promotion moves ``champion`` only when the challenger passes every gate (minimum macro-F1, ONNX
parity, latency budget) and beats the champion's macro-F1 on the same test subjects by more than
the margin. The decision and its reasons are tags on the challenger version either way; a failed
gate moves no alias. The registered model keeps ``champion_history`` so ``rollback`` can return
to the previous champion.

Who may move ``champion`` is a promotion policy (``policy_mode``): ``gate`` (an explicit
``har promote``, the scheduled retraining), ``initial`` (gated only while the registry has no
champion: `make run` on a fresh registry; experiments never move an existing champion) and
``dry-run`` (the gate's verdict is recorded, no alias moves).

Registration is idempotent: a version of the same MLflow run with the same ONNX model (model URI or
ONNX content digest) is returned instead of registering it again.

Both are safe to re-run after a crash (`kill -9`, a lost machine) between their MLflow calls: a
registration interrupted before its ``challenger`` alias was set is finished by the next
``register_version``, and ``champion_history`` is made to agree with the ``champion`` alias (which
serving follows) whenever a promotion or rollback reads it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, get_args

from har.config import PromotionPolicy, RegistryParams
from har.errors import HarError

CHALLENGER, CHAMPION = "challenger", "champion"
HISTORY_TAG = "champion_history"
DIGEST_TAG = "onnx_sha256"  # sha256 of the exported ONNX file, set at export (run) and register
POLICIES: tuple[str, ...] = get_args(PromotionPolicy)
# promotion.decision values written by a gated decision; a dry run never overwrites them
GATED_DECISIONS = ("promoted", "rejected")


class RegistryError(HarError):
    """A registry operation cannot be carried out (no challenger, nothing to roll back to, ...)."""


@dataclass
class Decision:
    promoted: bool  # alias champion moved to ``version``
    version: str
    champion_before: str | None
    reasons: list[str] = field(default_factory=list)
    challenger_macro_f1: float | None = None
    champion_macro_f1: float | None = None
    policy: str = "gate"
    dry_run: bool = False  # the verdict was only recorded: no alias was to move
    passed: bool = False  # the gate's verdict (what a gated promotion would have done)
    policy_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PolicyMode:
    """What a promotion policy does with the registry as it is: gate for real, or dry run."""

    dry_run: bool
    note: str


def policy_mode(policy: str, champion: str | None) -> PolicyMode:
    """Gate for real or only record the verdict, given the policy and the current champion.

    ``champion`` is the version holding alias champion (None: the registry has none yet).
    """
    if policy == "gate":
        return PolicyMode(False, "policy gate: the champion moves if the gate passes")
    if policy == "initial":
        if champion is None:
            return PolicyMode(False, "policy initial: no champion yet, the gate decides")
        return PolicyMode(True, f"policy initial: champion v{champion} exists and stays, so only the "
                                "verdict is recorded")
    if policy == "dry-run":
        return PolicyMode(True, "policy dry-run: only the verdict is recorded")
    raise RegistryError(f"promotion policy must be one of {', '.join(POLICIES)}; got {policy!r}")


@dataclass(frozen=True)
class Registration:
    version: str
    created: bool  # False: the model was already registered as ``version``
    completed: bool = False  # True: that earlier registration had been interrupted; now finished


def _alias_version(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def find_version(client: Any, name: str, run_id: str, model_uri: str,
                 digest: str | None = None) -> str | None:
    """The oldest version of ``name`` holding this run's model: same model URI or ONNX digest."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except MlflowException:  # no such registered model yet
        return None
    for mv in sorted(versions, key=lambda v: int(v.version)):
        # a re-export of the same weights logs a new model URI but the same ONNX bytes
        if mv.source == model_uri or (digest and mv.tags.get(DIGEST_TAG) == digest):
            return str(mv.version)
    return None


def register_version(client: Any, name: str, model_uri: str, run_id: str, tags: dict[str, str],
                     digest: str | None = None) -> Registration:
    """Register ``model_uri`` as a new version of ``name`` and point ``challenger`` at it.

    If this run's model is already a version (``find_version``), that version is returned with
    ``created=False``: no new version, no alias moved, unless that registration was interrupted.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    existing = find_version(client, name, run_id, model_uri, digest)
    if existing is not None:
        # Registering points challenger at the version it creates, always the newest; so a version
        # newer than the challenger (or no challenger at all) is a registration that died before
        # its alias was set: finish it. An older version was registered in full: nothing moves.
        challenger = _alias_version(client, name, CHALLENGER)
        if challenger is None or int(challenger.version) < int(existing):
            client.set_registered_model_alias(name, CHALLENGER, existing)
            return Registration(existing, created=False, completed=True)
        return Registration(existing, created=False)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Human activity recognition (har) models; "
                                       "aliases: champion = served, challenger = newest candidate.")
    version_tags = {**tags, "run_id": run_id, **({DIGEST_TAG: digest} if digest else {})}
    mv = mlflow.register_model(model_uri, name, tags=version_tags)
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    return Registration(str(mv.version), created=True)


def registration_line(reg: dict[str, Any]) -> str:
    """One line for people: what ``register`` did (CLI, flow summary and logs say the same)."""
    if reg.get("created", True):
        return f"registered {reg['name']} v{reg['version']} (alias challenger)"
    if reg.get("completed"):
        return (f"{reg['name']} v{reg['version']}: finished its interrupted registration "
                "(alias challenger)")
    return (f"{reg['name']}: MLflow run {reg['run_id']} is already registered as v{reg['version']}; "
            "nothing registered")


def promotion_line(d: dict[str, Any]) -> str:
    """One line for people: the promotion decision, its policy and reasons."""
    reasons = "; ".join(d.get("reasons") or [])
    if d.get("dry_run"):
        verdict = "would promote" if d.get("passed") else "would reject"
        return f"v{d['version']}: dry run, {verdict} ({d.get('policy_note')}); {reasons}"
    verdict = "promoted to champion" if d.get("promoted") else "NOT promoted"
    return f"v{d['version']}: {verdict} (policy {d.get('policy', 'gate')}); {reasons}"


def version_metrics(client: Any, mv: Any) -> dict[str, float]:
    return dict(client.get_run(mv.run_id).data.metrics) if mv.run_id else {}


def quantization_failures(export_report: dict[str, Any], gates: RegistryParams) -> list[str]:
    """Why an export may not be registered at all: an int8 model that lost more test macro-F1
    against its own fp32 model than registry.max_quant_macro_f1_drop (empty = fine)."""
    if export_report.get("quantize", "none") == "none":
        return []
    mode, drop = export_report["quantize"], export_report.get("quant_macro_f1_drop")
    if drop is None:
        return [f"{mode} export without a measured macro-F1 loss: run `har export` again"]
    if drop > gates.max_quant_macro_f1_drop:
        before, after = export_report.get("fp32_macro_f1", 0), export_report.get("int8_macro_f1", 0)
        return [f"{mode} model loses {drop:.4f} test macro-F1 against its fp32 model ({before:.4f} → "
                f"{after:.4f}), more than registry.max_quant_macro_f1_drop {gates.max_quant_macro_f1_drop}"]
    return []


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


def _recorded_history(client: Any, name: str) -> list[str]:
    return json.loads(client.get_registered_model(name).tags.get(HISTORY_TAG, "[]"))


def _history(client: Any, name: str, champion: str) -> list[str]:
    """``champion_history`` ending with ``champion`` (the alias), repaired in the registry if it
    did not: a promotion interrupted after moving the alias lacks its entry (appended), a rollback
    interrupted likewise still lists the version rolled back from (cut after the champion)."""
    recorded = _recorded_history(client, name)
    if champion in recorded:
        history = recorded[:len(recorded) - recorded[::-1].index(champion)]
    else:
        history = [*recorded, champion]
    if history != recorded:
        client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    return history


def promote(client: Any, name: str, gates: RegistryParams, version: str | None = None,
            champion_score: Callable[[Any], float | None] | None = None,
            policy: str = "gate") -> Decision:
    """Gate the challenger (or ``version``) against the champion; move ``champion`` if it wins.

    ``champion_score`` re-scores the champion on the challenger's test windows (same subjects by
    construction); without it, or when it returns None, the champion's recorded test macro-F1 is
    used, and only if it was measured on the same test subjects. ``policy`` (``policy_mode``) may
    turn the decision into a dry run: the verdict is tagged as ``dry-run: would promote|would
    reject`` and no alias moves.
    """
    champ = _alias_version(client, name, CHAMPION)
    mode = policy_mode(policy, str(champ.version) if champ else None)  # an unknown policy raises
    history = _history(client, name, str(champ.version)) if champ else []
    if version is None:
        mv = _alias_version(client, name, CHALLENGER)
        if mv is None:
            raise RegistryError(f"{name}: no version has alias '{CHALLENGER}'; run `har register` first")
    else:
        from mlflow.exceptions import MlflowException

        try:
            mv = client.get_model_version(name, str(version))
        except MlflowException:
            raise RegistryError(f"{name}: no version {version!r}; expected an existing version number "
                                "(see `mlflow ui` or reports/registry.json)") from None
    metrics = version_metrics(client, mv)
    reasons = gate_failures(metrics, gates)
    decision = Decision(False, str(mv.version), str(champ.version) if champ else None,
                        challenger_macro_f1=metrics.get("test_macro_f1"), policy=policy,
                        dry_run=mode.dry_run, policy_note=mode.note)
    already = champ is not None and str(champ.version) == str(mv.version)
    if already:
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
    decision.passed = not reasons
    decision.promoted = decision.passed and not mode.dry_run
    decision.reasons = reasons or ["passed all gates" + (
        f" and beat champion v{champ.version}" if champ is not None else "; first champion")]
    verdict = "promoted" if decision.passed else "rejected"
    if mode.dry_run:
        verdict = f"dry-run: would {'promote' if decision.passed else 'reject'}"
    # The champion keeps the tags that made it champion; a dry run never overwrites a gated decision.
    keep = already or (mode.dry_run and mv.tags.get("promotion.decision") in GATED_DECISIONS)
    if not keep:
        tags = {"promotion.decision": verdict,
                "promotion.reasons": json.dumps(decision.reasons),
                "promotion.policy": policy,
                "promotion.champion_before": decision.champion_before or "",
                "promotion.time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if decision.champion_macro_f1 is not None:
            tags["promotion.champion_macro_f1"] = f"{decision.champion_macro_f1:.6f}"
        for key, value in tags.items():
            client.set_model_version_tag(name, mv.version, key, value)
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, mv.version)
        client.set_registered_model_tag(name, HISTORY_TAG, json.dumps([*history, str(mv.version)]))
    return decision


def rollback(client: Any, name: str) -> Decision:
    """Point ``champion`` back at the previous champion; error if there is none."""
    champ = _alias_version(client, name, CHAMPION)
    if champ is None:
        raise RegistryError(f"{name}: there is no champion to roll back")
    history = _history(client, name, str(champ.version))[:-1]  # it ends with the champion
    if not history:
        raise RegistryError(f"{name}: champion v{champ.version} has no previous champion to return to")
    previous = history[-1]
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    client.set_model_version_tag(name, champ.version, "promotion.rolled_back", stamp)
    return Decision(True, previous, str(champ.version), [f"rolled back from v{champ.version} to v{previous}"],
                    passed=True)
