"""The model card of a registered version: what it was trained on, how it was tested, what it scores,
what it is for and where it is weak, and what the promotion gate decided (a pure function).

`har register` writes it when it creates a version: as ``model_card.md`` in the run's artifacts and
as the version's description in MLflow, so the registry UI shows it, and the API serves it at
``/v1/model/card``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CARD_ARTIFACT = "model_card.md"
# Where the models are weak on HAPT, measured (docs/results.md): a card repeats it where people look.
KNOWN_LIMITS = (
    "Trained on a smartphone worn at the waist (HAPT: Samsung Galaxy S II, belt-mounted); other "
    "placements (wrist, pocket, chest) change the signals and need their own data.",
    "The six postural transitions (STAND_TO_SIT … LIE_TO_STAND) are the weak classes: short (about "
    "3-4 s), rare, and confused with each other and with SITTING/STANDING.",
    "SITTING and STANDING are confused with each other more than other pairs (the waist sensor "
    "barely moves in either).",
    "Subjects were 19-48 years old and healthy; gait of other populations is not represented.",
)


@dataclass(frozen=True)
class CardInputs:
    """Everything the card says, gathered by the register stage from the run and the params."""

    name: str
    version: str
    model_type: str
    run_id: str
    classes: list[str]
    channels: list[str]
    rate_hz: float
    window_s: float
    overlap: float
    n_params: int
    train_subjects: list[int]
    val_subjects: list[int]
    test_subjects: list[int]
    dataset: str
    dataset_licence: str
    dataset_citation: str
    metrics: dict[str, float] = field(default_factory=dict)  # the run's test_* metrics
    promotion: dict[str, Any] = field(default_factory=dict)  # har.registry.gate.Decision.to_dict()
    data_digest: str = ""
    git_commit: str = ""
    confusion_artifact: str = "evaluation/confusion.png"


def _per_class_table(classes: list[str], metrics: dict[str, float]) -> list[str]:
    rows = ["| class | test F1 |", "|---|---|"]
    for c in classes:
        f1 = metrics.get(f"test_f1_{c}")
        rows.append(f"| {c} | {'—' if f1 is None else f'{f1:.3f}'} |")
    return rows


def _gate(promotion: dict[str, Any]) -> list[str]:
    if not promotion:
        return ["No promotion decision was recorded for this version yet (`har promote`)."]
    verdict = ("promoted to champion" if promotion.get("promoted") else
               "dry run: " + ("would promote" if promotion.get("passed") else "would reject")
               if promotion.get("dry_run") else "not promoted")
    lines = [f"**{verdict}** (policy `{promotion.get('policy', 'gate')}`; champion before: "
             f"v{promotion.get('champion_before') or '—'})", ""]
    lines += [f"- {reason}" for reason in promotion.get("reasons") or []]
    return lines


def model_card(c: CardInputs) -> str:
    """Markdown: data and subjects, protocol, per-class F1, confusion matrix, intended use and
    limits, the gate's decision, the dataset licence."""
    m = c.metrics
    macro, acc = m.get("test_macro_f1"), m.get("test_accuracy")
    weakest = sorted((m[f"test_f1_{k}"], k) for k in c.classes if f"test_f1_{k}" in m)[:3]
    lines = [
        f"# Model card: {c.name} v{c.version} ({c.model_type})", "",
        f"Test macro-F1 **{macro:.3f}**, accuracy **{acc:.3f}** on subjects {c.test_subjects} "
        "(never seen in training, validation or early stopping)." if macro is not None and acc is not None
        else "No test metrics were logged for this run (`har evaluate`).", "",
        "## Data", "",
        f"- Dataset: **{c.dataset}**; {len(c.classes)} classes: {', '.join(c.classes)}.",
        f"- Input: {len(c.channels)} channels ({', '.join(c.channels)}) at {c.rate_hz:g} Hz, windows of "
        f"{c.window_s:g} s with {c.overlap:.0%} overlap; raw physical units (g, rad/s), normalised "
        "inside the model.",
        f"- Subjects: training {c.train_subjects}, validation (early stopping) {c.val_subjects}, "
        f"test {c.test_subjects}.",
        f"- Data digest (sha256 of the windows and splits): `{c.data_digest or 'unknown'}`.", "",
        "## Evaluation protocol", "",
        "Split by subject, never by window: no subject's data is in two of train, validation and "
        "test. The test subjects are the official HAPT test subjects (params.yaml `split.test_subjects`)."
        " The 10-fold subject protocol for comparison with published work is `har evaluate --cv` "
        "(docs/results.md).", "",
        "## Per-class F1 (test subjects)", "", *_per_class_table(c.classes, m), "",
        f"Confusion matrix: artifact `{c.confusion_artifact}` of MLflow run `{c.run_id}`.", "",
        "## Intended use", "",
        "Recognising these activities from a phone's accelerometer and gyroscope worn at the waist, "
        "in research and prototypes, one window or a whole recording at a time (`/v1/predict`, "
        "`/v1/predict/recording`). Not a medical device; not for decisions about individuals.", "",
        "## Limits", "", *[f"- {limit}" for limit in KNOWN_LIMITS],
    ]
    if weakest:
        lines.append("- Weakest classes of this version: "
                     + ", ".join(f"{k} ({f1:.2f})" for f1, k in weakest) + ".")
    lines += ["", "## Promotion gate", "", *_gate(c.promotion), "",
              "## Provenance", "",
              f"- MLflow run `{c.run_id}`, git commit `{c.git_commit or 'unknown'}`, "
              f"{c.n_params:,} parameters.", "",
              "## Dataset licence", "", c.dataset_licence, "", f"Cite: {c.dataset_citation}", ""]
    return "\n".join(lines)
