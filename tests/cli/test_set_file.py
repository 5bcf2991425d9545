"""`--set-file`: a YAML mapping of dotted params keys (what `har tune` writes) applied like --set."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from project_support import REPO

from har.cli._common import overrides, params


def test_set_file_values_reach_the_params_and_set_wins(tmp_path: Path) -> None:
    best = tmp_path / "best_params.yaml"
    best.write_text("# Best trial of study x\ntrain.lr: 0.0031\ntrain.batch_size: 32\n"
                    "train.cnn1d.dropout: 0.1\n")
    p = params(REPO / "params.yaml", {"train.epochs": 3}, ["train.batch_size=128"], best)
    assert (p.train.lr, p.train.batch_size, p.train.epochs) == (0.0031, 128, 3)
    assert p.train.model_params("cnn1d").dropout == 0.1


def test_a_set_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- train.lr\n- 0.1\n")
    with pytest.raises(typer.BadParameter, match="expected a mapping of dotted params keys"):
        overrides({}, None, bad)
    with pytest.raises(typer.BadParameter, match="missing.yaml"):
        overrides({}, None, tmp_path / "missing.yaml")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("train.lrr: 0.1\n")
    with pytest.raises(typer.Exit):  # a ConfigError naming the key, printed as one line
        params(REPO / "params.yaml", set_file=unknown)
