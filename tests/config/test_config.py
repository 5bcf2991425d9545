from pathlib import Path

import pytest
import yaml

from har.config import load_params
from har.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_repo_params_parse() -> None:
    p = load_params(REPO / "params.yaml")
    assert p.split.test_subjects == [2, 4, 9, 10, 12, 13, 18, 20, 24]
    assert len(p.preprocess.classes) == 12
    assert p.validate_.gx_dir == Path("great_expectations")


def _write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_key_named(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda r: r["preprocess"].update(windw_s=3))
    with pytest.raises(ConfigError, match=r"preprocess\.windw_s"):
        load_params(path)


def test_wrong_type_named(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda r: r["split"].update(cv_folds="ten"))
    with pytest.raises(ConfigError, match=r"split\.cv_folds"):
        load_params(path)


def test_unknown_section_named(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda r: r.update(trian={"lr": 1}))
    with pytest.raises(ConfigError, match="trian"):
        load_params(path)


def test_overrides_are_validated(tmp_path: Path) -> None:
    p = load_params(REPO / "params.yaml", {"preprocess.window_s": 3.0, "data.subjects": [1, 2]})
    assert p.preprocess.window_s == 3.0
    assert p.data.subjects == [1, 2]
    with pytest.raises(ConfigError, match=r"preprocess\.overlap"):
        load_params(REPO / "params.yaml", {"preprocess.overlap": 1.5})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
