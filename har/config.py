"""params.yaml parsed into typed models: the single source of configuration.

Every section is a pydantic model with ``extra="forbid"`` so an unknown key or a wrong type is a
``ConfigError`` naming the dotted key. CLI options override keys through ``apply_overrides``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from har.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")
MIRROR_ENV = "HAR_DATA_MIRROR"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataParams(_Section):
    dataset: str = "hapt"
    raw_dir: Path = Path("data/raw")
    interim_path: Path = Path("data/interim/recordings.parquet")
    subjects: list[int] | None = None
    download_retries: int = Field(5, ge=0)
    download_timeout_s: float = Field(60, gt=0)


class ValidateParams(_Section):
    gx_dir: Path = Path("great_expectations")
    report_path: Path = Path("reports/validation.json")
    docs_dir: Path = Path("reports/data_docs")
    acc_abs_max_g: float = Field(16.0, gt=0)
    gyro_abs_max_rad_s: float = Field(35.0, gt=0)
    rate_tolerance: float = Field(0.01, gt=0, lt=1)


class PreprocessParams(_Section):
    target_rate_hz: float = Field(50.0, gt=0)
    gravity_split: bool = False
    gravity_cutoff_hz: float = Field(0.3, gt=0)
    window_s: float = Field(2.56, gt=0)
    overlap: float = Field(0.5, ge=0, lt=1)
    label_policy: Literal["majority", "drop_mixed"] = "majority"
    classes: list[str] = Field(min_length=2)
    min_purity: float = Field(0.8, gt=0, le=1)
    out_dir: Path = Path("data/processed")


class SplitParams(_Section):
    test_subjects: list[int] = Field(default_factory=lambda: [2, 4, 9, 10, 12, 13, 18, 20, 24])
    n_val_subjects: int = Field(4, ge=1)
    cv_folds: int = Field(10, ge=2)
    seed: int = 42

    @field_validator("test_subjects")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("test subjects must be unique")
        return v


class Params(_Section):
    data: DataParams = Field(default_factory=DataParams)
    validate_: ValidateParams = Field(default_factory=ValidateParams, alias="validate")
    preprocess: PreprocessParams
    split: SplitParams = Field(default_factory=SplitParams)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]).replace("validate_", "validate")
        got = e.get("input")
        lines.append(f"  {key}: {e['msg']} (got {got!r})")
    return "\n".join(lines)


def parse_params(raw: dict[str, Any], source: str = "params") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_params(path: Path = DEFAULT_PARAMS, overrides: dict[str, Any] | None = None) -> Params:
    """Read params.yaml, apply dotted overrides (``{"preprocess.window_s": 3.0}``), validate."""
    if not path.exists():
        raise ConfigError(f"{path}: parameters file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        _set_dotted(raw, key, value, str(path))
    return parse_params(raw, str(path))


def _set_dotted(raw: dict[str, Any], key: str, value: Any, source: str) -> None:
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {key}: '{part}' is not a section")
        node = child
    node[leaf] = value


def mirror_dir() -> Path | None:
    """The local dataset mirror named by HAR_DATA_MIRROR, if set."""
    value = os.environ.get(MIRROR_ENV)
    return Path(value) if value else None
