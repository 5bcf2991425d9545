"""Search spaces from params.yaml: a bad key or bound is a ConfigError naming it, before any trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from project_support import REPO

from har.config import load_params
from har.errors import ConfigError
from har.tuning.space import grid, grid_size, model_space, trial_params


def _params(tmp_path: Path, space: dict[str, Any], **tune: Any) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["tune"].update(space=space, **tune)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_repo_spaces_are_valid() -> None:
    p = load_params(REPO / "params.yaml")
    for model in p.tune.space:
        assert model_space(p, model)


@pytest.mark.parametrize(("dims", "named", "says"), [
    ({"train.lrr": {"low": 0.001, "high": 0.1}}, "tune.space.cnn1d.train.lrr", "unknown key 'lrr'"),
    ({"train.cnn1d.dropout": {"low": 0.1, "high": 1.5}}, "tune.space.cnn1d.train.cnn1d.dropout",
     "less than 1"),
    ({"train.cnn1d.kernels": {"choices": [3, 5]}}, "tune.space.cnn1d.train.cnn1d.kernels", "kernels"),
    ({"train.batch_size": {"choices": [0, 32]}}, "tune.space.cnn1d.train.batch_size", "greater than"),
    ({"train.schedule": {"choices": ["onecycle", "linear"]}}, "tune.space.cnn1d.train.schedule", "linear"),
])
def test_a_key_the_train_section_refuses_is_named(tmp_path: Path, dims: dict, named: str, says: str) -> None:
    p = load_params(_params(tmp_path, {"cnn1d": dims}))
    with pytest.raises(ConfigError) as err:
        model_space(p, "cnn1d")
    assert named in str(err.value) and says in str(err.value)


@pytest.mark.parametrize(("dist", "says"), [
    ({"low": 0.1, "high": 0.01}, "must be below high"),
    ({"low": 0.0, "high": 0.1, "log": True}, "log scale needs low > 0"),
    ({"low": 0.001}, "needs both low and high"),
    ({"choices": [1, 2], "low": 1, "high": 2}, "either choices or low/high"),
    ({"low": 0.001, "high": 0.1, "log": True, "step": 0.01}, "cannot be combined"),
    ({"choices": []}, "at least 1"),
])
def test_bad_bounds_are_named_at_load(tmp_path: Path, dist: dict, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_params(_params(tmp_path, {"cnn1d": {"train.lr": dist}}))
    assert "tune.space.cnn1d.train.lr" in str(err.value) and says in str(err.value)


def test_space_keys_must_be_train_keys_and_models_known(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tune.space: .*covers train.\\* keys only"):
        load_params(_params(tmp_path, {"cnn1d": {"preprocess.window_s": {"low": 2.0, "high": 4.0}}}))
    with pytest.raises(ConfigError, match="unknown model 'resnet'"):
        load_params(_params(tmp_path, {"resnet": {"train.lr": {"low": 0.001, "high": 0.1}}}))
    p = load_params(_params(tmp_path, {"classic": {"train.classic.max_iter": {"low": 10, "high": 20}}}))
    with pytest.raises(ConfigError, match="tune.space.cnn1d: no search space for model 'cnn1d'"):
        model_space(p, "cnn1d")


def test_grid_needs_choices_or_steps(tmp_path: Path) -> None:
    space = {"cnn1d": {"train.lr": {"low": 0.001, "high": 0.01, "log": True},
                       "train.batch_size": {"choices": [32, 64]}}}
    p = load_params(_params(tmp_path, space, sampler="grid"))
    with pytest.raises(ConfigError, match="tune.space.cnn1d.train.lr: the grid sampler needs choices"):
        model_space(p, "cnn1d")
    space["cnn1d"]["train.lr"] = {"low": 0.001, "high": 0.004, "step": 0.001}
    space["cnn1d"]["train.cnn1d.kernel_size"] = {"low": 3, "high": 7, "step": 2}
    p = load_params(_params(tmp_path, space, sampler="grid"))
    dims = model_space(p, "cnn1d")
    assert grid(dims) == {"train.lr": [0.001, 0.002, 0.003, 0.004], "train.batch_size": [32, 64],
                          "train.cnn1d.kernel_size": [3, 5, 7]}
    assert grid_size(dims) == 24


def test_trial_values_reach_the_train_section() -> None:
    p = load_params(REPO / "params.yaml")
    tp = trial_params(p, "tinyhar", {"train.lr": 0.005, "train.tinyhar.filters": 16}).train
    assert tp.model == "tinyhar" and tp.lr == 0.005 and tp.model_params("tinyhar").filters == 16
    assert p.train.lr != 0.005  # the original params are untouched
