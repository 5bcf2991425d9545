"""The model card is a pure function of what the registry knows about a version."""

from __future__ import annotations

from har.registry.card import KNOWN_LIMITS, CardInputs, model_card

CLASSES = ["WALKING", "SITTING", "STANDING", "SIT_TO_STAND"]


def _inputs(**kw: object) -> CardInputs:
    base = dict(name="har-activity", version="3", model_type="cnn1d", run_id="abc123", classes=CLASSES,
                channels=["acc_x", "acc_y", "acc_z"], rate_hz=50.0, window_s=2.56, overlap=0.5,
                n_params=66956, train_subjects=[1, 3], val_subjects=[5], test_subjects=[2, 4],
                dataset="hapt", dataset_licence="Non-commercial use only.",
                dataset_citation="Reyes-Ortiz 2016",
                metrics={"test_macro_f1": 0.8438, "test_accuracy": 0.921, "test_f1_WALKING": 0.99,
                         "test_f1_SITTING": 0.81, "test_f1_STANDING": 0.85, "test_f1_SIT_TO_STAND": 0.67},
                promotion={"promoted": True, "policy": "gate", "champion_before": "2", "dry_run": False,
                           "reasons": ["passed all gates and beat champion v2"]},
                data_digest="d" * 64, git_commit="0123abc")
    base.update(kw)
    return CardInputs(**base)  # type: ignore[arg-type]


def test_card_covers_what_a_reader_needs() -> None:
    card = model_card(_inputs())
    assert card.startswith("# Model card: har-activity v3 (cnn1d)")
    assert "Test macro-F1 **0.844**, accuracy **0.921** on subjects [2, 4]" in card
    assert "training [1, 3], validation (early stopping) [5], test [2, 4]" in card
    assert "| SIT_TO_STAND | 0.670 |" in card and "| WALKING | 0.990 |" in card
    assert "Weakest classes of this version: SIT_TO_STAND (0.67), SITTING (0.81), STANDING (0.85)" in card
    assert "evaluation/confusion.png" in card and "abc123" in card
    assert "**promoted to champion** (policy `gate`; champion before: v2)" in card
    assert "- passed all gates and beat champion v2" in card
    assert "Split by subject, never by window" in card
    assert all(limit in card for limit in KNOWN_LIMITS) and "waist" in card
    assert "## Dataset licence\n\nNon-commercial use only." in card and "Cite: Reyes-Ortiz 2016" in card


def test_card_without_metrics_or_decision_says_so() -> None:
    card = model_card(_inputs(metrics={}, promotion={}))
    assert "No test metrics were logged for this run (`har evaluate`)." in card
    assert "| WALKING | — |" in card
    assert "No promotion decision was recorded for this version yet" in card


def test_dry_run_verdict_is_worded_as_such() -> None:
    card = model_card(_inputs(promotion={"promoted": False, "dry_run": True, "passed": False,
                                         "policy": "initial", "champion_before": "1",
                                         "reasons": ["macro-F1 0.80 does not beat champion v1"]}))
    assert "**dry run: would reject** (policy `initial`; champion before: v1)" in card
