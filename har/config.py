"""params.yaml parsed into typed models: the single source of configuration.

Every section is a pydantic model with ``extra="forbid"`` so an unknown key or a wrong type is a
``ConfigError`` naming the dotted key. CLI options override keys through ``apply_overrides``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from har.contracts import OWN_SOURCE
from har.errors import ConfigError
from har.models._registry import get_model, model_names

DEFAULT_PARAMS = Path("params.yaml")
MIRROR_ENV = "HAR_DATA_MIRROR"


class Section(BaseModel):
    """A params.yaml section: unknown keys and wrong types are errors (model sections subclass it)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# Datasets are found like models, without importing their package (har.data pulls in pandas and
# requests): each registered dataset has its sha256 manifest there; `own` is the user's folder.
MANIFESTS_DIR = Path(__file__).parent / "data" / "manifests"
AccUnit = Literal["g", "m/s2", "mg"]
GyroUnit = Literal["rad/s", "deg/s"]
TimeUnit = Literal["s", "ms", "us", "ns"]


def dataset_names() -> list[str]:
    """The values data.source takes: every registered dataset, and ``own``."""
    return sorted(p.name.removesuffix(".sha256") for p in MANIFESTS_DIR.glob("*.sha256")) + [OWN_SOURCE]


class DataParams(Section):
    source: str = "hapt"  # a registered dataset, or `own`: the recordings in own_dir
    raw_dir: Path = Path("data/raw")
    interim_path: Path = Path("data/interim/recordings.parquet")
    subjects: list[int] | None = None
    download_retries: int = Field(5, ge=0)
    download_timeout_s: float = Field(60, gt=0)
    # own recordings (source: own, `har data import`, `har predict` on CSV/parquet): how they are written
    own_dir: Path = Path("data/own")
    acc_unit: AccUnit = "g"
    gyro_unit: GyroUnit = "rad/s"
    time_unit: TimeUnit = Field("s", description="unit of numeric timestamps (ISO datetimes need none)")
    default_subject: int = Field(0, ge=0, description="subject id of files without a subject column")
    plausibility: Literal["error", "warn"] = Field(
        "error", description="a gravity far from 1 g or an implausible sampling rate: error or warning")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "dataset" in raw:  # params.yaml files older than data.source
            raise ValueError(f"data.dataset is now data.source (a dataset, or {OWN_SOURCE!r})")
        return raw

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        known = dataset_names()
        if v not in known:
            raise ValueError(f"unknown source {v!r}; expected one of {', '.join(known)}")
        return v


class ValidateParams(Section):
    gx_dir: Path = Path("great_expectations")
    report_path: Path = Path("reports/validation.json")
    windows_report_path: Path = Path("reports/validation_windows.json")
    docs_dir: Path = Path("reports/data_docs")
    acc_abs_max_g: float = Field(16.0, gt=0)
    gyro_abs_max_rad_s: float = Field(35.0, gt=0)
    rate_tolerance: float = Field(0.01, gt=0, lt=1)


class TransitionParams(Section):
    """``preprocess.transitions.<class>``: the activities a transition class leaves and enters."""

    leaves: list[str] = Field(min_length=1)
    enters: list[str] = Field(min_length=1)


class PreprocessParams(Section):
    target_rate_hz: float = Field(50.0, gt=0)
    gravity_split: bool = False
    gravity_cutoff_hz: float = Field(0.3, gt=0)
    window_s: float = Field(2.56, gt=0)
    overlap: float = Field(0.5, ge=0, lt=1)
    label_policy: Literal["majority", "drop_mixed"] = "majority"
    classes: list[str] = Field(min_length=2)
    # The grammar of the context HMM (har/serving/context.py): a transition class can only follow
    # the activities it leaves and precede the ones it enters. Empty: persistence only.
    transitions: dict[str, TransitionParams] = Field(default_factory=dict)
    min_purity: float = Field(0.8, gt=0, le=1)
    out_dir: Path = Path("data/processed")

    @model_validator(mode="after")
    def _transitions_name_classes(self) -> PreprocessParams:
        known = set(self.classes)
        for name, t in self.transitions.items():
            if name not in known:
                raise ValueError(f"transitions: {name!r} is not one of preprocess.classes; a grammar names "
                                 "the dataset's own transition classes (set `transitions: {}` when "
                                 "there are none)")
            unknown = [c for c in t.leaves + t.enters if c not in known or c in self.transitions]
            if unknown:
                raise ValueError(f"transitions.{name}: {unknown} are not activities of preprocess.classes "
                                 "(a transition leaves and enters activities, not other transitions)")
        return self

    def transition_grammar(self) -> dict[str, dict[str, list[str]]]:
        """The grammar as plain data (the model's metadata carries it to the API)."""
        return {k: v.model_dump() for k, v in self.transitions.items()}


class SplitParams(Section):
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


class AugmentParams(Section):
    """IMU augmentations applied to raw training windows (physical units), each switchable."""

    p: float = Field(0.5, ge=0, le=1, description="probability each augmentation is applied")
    jitter_sigma: float = Field(0.02, ge=0, description="Gaussian noise, in channel std units; 0 = off")
    scaling_sigma: float = Field(0.1, ge=0, description="per-channel gain N(1, sigma); 0 = off")
    rotation: bool = True  # one random 3-D rotation for acc and gyro triplets alike
    time_warp_sigma: float = Field(0.2, ge=0, description="smooth time warp strength; 0 = off")


class TrainParams(Section):
    """``train``: the loop's settings, plus one section per model (``train.<model name>``).

    Model sections are checked by name at load time (each must name a model of the registry) and
    by content when that model is used (``model_params``), so parsing params never imports torch.
    """

    # model sections are the "extra" keys; their names and values are checked by the registry
    model_config = ConfigDict(extra="allow", validate_assignment=True)

    model: str = "cnn1d"
    out_dir: Path = Path("models")
    reports_dir: Path = Path("reports/train")
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    schedule: Literal["onecycle", "cosine"] = "onecycle"
    patience: int = Field(10, ge=1, description="epochs without val macro-F1 gain before stopping")
    # one-cycle keeps the learning rate high for the first half: stopping then cuts the anneal short
    min_epochs: int = Field(20, ge=1, description="no early stop before this many epochs")
    grad_clip: float = Field(1.0, gt=0)
    class_weighted: bool = True
    # regularisers of the loss, measured on the transitions in docs/results.md
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="cross-entropy label smoothing; 0 = off")
    mixup_alpha: float = Field(0.0, ge=0, description="mixup: Beta(alpha, alpha) blends of pairs; 0 = off")
    seed: int = 42
    num_threads: int = Field(2, ge=1, description="torch threads; `har train --nproc N`: shared by the N")
    # bf16: autocast of the training forward pass and loss only (CPU and CUDA); weights, optimizer,
    # validation and the exported ONNX stay fp32
    precision: Literal["fp32", "bf16"] = "fp32"
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when a GPU is visible")
    augment: AugmentParams = Field(default_factory=AugmentParams)

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        return _check_model_name(v)

    @model_validator(mode="after")
    def _model_sections_name_models(self) -> TrainParams:
        known = model_names()
        for key, value in (self.model_extra or {}).items():
            if key not in known:
                raise ValueError(f"unknown key {key!r}: neither a train setting nor a model "
                                 f"(models: {', '.join(known)})")
            if not isinstance(value, dict):
                raise ValueError(f"{key}: a model section must be a mapping, got {type(value).__name__}")
        return self

    def model_params(self, name: str | None = None) -> BaseModel:
        """The typed ``train.<name>`` section (defaults where params.yaml leaves it out);
        ConfigError naming ``train.<name>.<key>`` when it does not fit the model's params class."""
        name = name or self.model
        entry = get_model(_check_model_name(name))
        raw = (self.model_extra or {}).get(name, {})
        try:
            return entry.params.model_validate(raw)
        except ValidationError as err:
            raise ConfigError(_format_errors(err, "params", prefix=f"train.{name}")) from None

    def sections_for(self, name: str) -> dict[str, Any]:
        """The loop's settings and the one model section ``name`` uses (what an MLflow run logs)."""
        own = {k: v for k, v in self.model_dump(mode="json").items() if k not in (self.model_extra or {})}
        return {**own, name: self.model_params(name).model_dump(mode="json")}


def _check_model_name(name: str) -> str:
    known = model_names()
    if name not in known:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(known)}")
    return name


class EvaluateParams(Section):
    out_dir: Path = Path("reports/evaluation")
    cv_models: list[str] = Field(default_factory=lambda: ["classic", "cnn1d", "tinyhar"])
    cv_folds: int = Field(10, ge=2)
    cv_window_s: float = Field(3.0, gt=0)  # the WHAR Arena protocol: 3 s windows, 50 % overlap
    cv_overlap: float = Field(0.5, ge=0, lt=1)
    cv_epochs: int = Field(30, ge=1)
    cv_out_dir: Path = Path("reports/cv")
    # The Prefect flow `cv-protocol` runs one task per (model, fold) on Dask: on pipeline.dask_address,
    # else on a LocalCluster of cv_workers single-threaded workers (0 = one per CPU); 1 runs the folds
    # in turn in this process, without Prefect or Dask
    cv_workers: int = Field(0, ge=0, description="Dask workers for the folds: 0 = one per CPU (or the "
                            "cluster's), 1 = serial in this process")

    @field_validator("cv_models")
    @classmethod
    def _known_models(cls, v: list[str]) -> list[str]:
        return [_check_model_name(name) for name in v]


class Distribution(Section):
    """One dimension of a search space (``tune.space.<model>.<train key>``).

    ``{choices: [...]}`` is categorical; ``{low, high}`` is a range, integer when both bounds are
    integers, with an optional ``step`` (the grid sampler needs choices or a step) or ``log: true``.
    """

    choices: list[Any] | None = Field(None, min_length=1)
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = Field(None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Distribution:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise ValueError("give either choices or low/high (with step or log), not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("a range needs both low and high (or give choices)")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0 (got {self.low})")
        if self.log and self.step is not None:
            raise ValueError("log scale and step cannot be combined")
        return self

    @property
    def is_int(self) -> bool:
        ints = (self.low, self.high) + ((self.step,) if self.step is not None else ())
        return self.choices is None and all(isinstance(v, int) and not isinstance(v, bool) for v in ints)


class TuneParams(Section):
    """``tune``: hyperparameter search with Optuna over ``train.*`` keys (`har tune`, docs/tuning.md).

    Trials train on the training subjects and are scored on the validation subjects only; the test
    subjects are never read. The space's keys are checked against the train section when used
    (``har.tuning.space``), so parsing params never imports Optuna or torch.
    """

    model: str | None = Field(None, description="the model to tune; null = train.model")
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    n_trials: int = Field(20, ge=1, description="finished trials (complete or pruned) the study aims for")
    timeout_s: float | None = Field(3600.0, gt=0, description="no new trial starts after this; null = none")
    epochs: int | None = Field(None, ge=1, description="epochs per trial; null = train.epochs")
    storage: str = Field("sqlite:///optuna.db", description="Optuna storage URL (SQLAlchemy): several "
                         "processes or machines on one URL share one study")
    study: str | None = Field(None, description="study name; null = derived from the model, the space, "
                              "the sampler, the train section and the data, so a changed setup starts "
                              "a new study and the same setup resumes its own")
    workers: int = Field(0, ge=0, description="parallel trials on Dask (pipeline.dask_address, else a "
                         "LocalCluster here): 0 = one per CPU (or the cluster's), 1 = in this process")
    seed: int = 42
    out_dir: Path = Path("reports/tune")
    space: dict[str, dict[str, Distribution]] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str | None) -> str | None:
        return None if v is None else _check_model_name(v)

    @field_validator("space")
    @classmethod
    def _space_models(cls, v: dict[str, dict[str, Distribution]]) -> dict[str, dict[str, Distribution]]:
        for name, dims in v.items():
            _check_model_name(name)
            for key in dims:
                if not key.startswith("train."):
                    raise ValueError(f"{name}.{key}: a search space covers train.* keys only")
        return v


class TrackingParams(Section):
    # MLFLOW_TRACKING_URI in the environment wins over this embedded default.
    uri: str = "sqlite:///mlflow.db"
    artifact_dir: Path = Path("mlartifacts")
    experiment: str = "har"


class ExportParams(Section):
    path: Path = Path("models/model.onnx")
    report_path: Path = Path("reports/export.json")
    opset: int = Field(18, ge=13)
    parity_atol: float = Field(1e-4, gt=0)
    latency_runs: int = Field(200, ge=10)
    # int8: static quantisation calibrated on training-subject windows (har.export.quantize); the
    # served and registered model is then the int8 one, and its macro-F1 loss is gated at register
    quantize: Literal["none", "int8"] = "none"
    calibration_windows: int = Field(512, ge=16, description="training windows that calibrate int8 ranges")
    ort: bool = Field(False, description="also write the ORT format (mobile/embedded) beside the ONNX")


PromotionPolicy = Literal["gate", "initial", "dry-run"]


class RegistryParams(Section):
    model_name: str = "har-activity"
    report_path: Path = Path("reports/registry.json")
    margin: float = Field(0.0, ge=0, description="challenger must beat champion macro-F1 by this")
    min_macro_f1: float = Field(0.6, ge=0, le=1)
    max_parity_diff: float = Field(1e-4, gt=0)
    # an int8 export may lose at most this much test macro-F1 against its own fp32 model
    max_quant_macro_f1_drop: float = Field(0.005, ge=0, le=1)
    latency_budget_ms: float = Field(5.0, gt=0, description="batch-1 p50 ONNX Runtime latency")
    # what `har register` (the dvc register stage) does after registering: `initial` promotes only an
    # empty registry's first version, so experiments never move the champion; the scheduled
    # retraining sets `gate`; `dry-run` records the verdict only (har.registry.gate.policy_mode)
    promotion_policy: PromotionPolicy = "initial"


class ServeParams(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    model_uri: str = "models:/har-activity@champion"  # or a path to an .onnx file
    reload_interval_s: float = Field(10.0, gt=0, description="how often the alias is re-checked")
    max_body_bytes: int = Field(8_000_000, ge=1024)
    max_windows: int = Field(4096, ge=1)
    # the timeline of a recording: majority vote over smoothing_windows windows, or an HMM (Viterbi)
    # whose switch probability per window is hmm_switch_prob (benchmarks/continuous.py tunes both)
    # chosen on validation subjects: the HMM kept transitions a majority vote erases (docs/results.md)
    smoothing: Literal["majority", "hmm"] = "hmm"
    smoothing_windows: int = Field(3, ge=1, description="majority vote length over window predictions")
    hmm_switch_prob: float = Field(0.05, gt=0, lt=1, description="HMM: probability of a change per window")
    inference_log_dir: Path = Path("data/inference_log")
    ort_threads: int = Field(1, ge=1, description="ONNX Runtime intra-op threads per server worker")
    # Limits of the HTTP server (docs/serving.md#limits).
    max_samples: int = Field(500_000, ge=1, description="samples per /v1/predict/recording request")
    max_concurrency: int = Field(32, ge=1, description="requests in progress on the model routes; "
                                 "more are answered 503 + Retry-After at once")
    max_queue_wait_ms: float = Field(25.0, gt=0, description="a request that waited longer than this "
                                     "on the busy event loop is answered 503 + Retry-After")
    max_connections: int = Field(1024, ge=8, description="open connections (uvicorn limit_concurrency)")
    read_timeout_s: float = Field(15.0, gt=0, description="to receive a whole request (headers and "
                                  "body) after the connection opens or the previous response")
    keep_alive_timeout_s: int = Field(5, ge=1, description="idle keep-alive connections are closed after")
    retry_after_s: int = Field(1, ge=1, description="Retry-After of a 503 from load shedding")
    cors_origins: list[str] = Field(default_factory=list, description="browser origins allowed by "
                                    "CORS; empty = no CORS headers")
    inference_log_max_file_bytes: int = Field(64_000_000, ge=1024, description="rotate a log file past this")
    inference_log_max_total_bytes: int = Field(2_000_000_000, ge=1024,
                                               description="delete the oldest log files past this")
    inference_log_retention_days: int = Field(30, ge=1, description="delete log files older than this")
    inference_log_queue_max: int = Field(10_000, ge=1, description="records waiting for the writer; "
                                         "more are dropped and counted")


class MonitorParams(Section):
    reference_path: Path = Path("data/processed/reference_stats.json")
    method: Literal["ks", "psi"] = "psi"
    threshold: float = Field(0.2, gt=0, description="PSI (or KS statistic) above which a channel drifts")
    min_drifted_channels: int = Field(1, ge=1)
    report_dir: Path = Path("reports/drift")


class PipelineParams(Section):
    deployment: str = "har-retrain"
    work_pool: str = "har-pool"  # a `process` pool; `har pipeline deploy` targets it, workers poll it
    cron: str = "0 3 * * 1"  # Mondays 03:00
    timezone: str = "UTC"
    retries: int = Field(2, ge=0)
    retry_delay_s: float = Field(5.0, ge=0)
    drift_cron: str = "0 * * * *"
    # The Dask cluster of the parallel flows (CV folds, tuning trials): a scheduler address such as
    # tcp://10.0.0.5:8786; null = a LocalCluster started for the run, one single-threaded worker per
    # requested worker (evaluate.cv_workers, tune.workers)
    dask_address: str | None = None


class StackParams(Section):
    """The production stack on one machine (`har stack up`): PostgreSQL, S3, MLflow, Prefect, API.

    Ports and names only; secrets come from the environment or ``<dir>/secrets.env`` (generated,
    never in git). The API listens on ``serve.port``; the work pool is ``pipeline.work_pool``.
    """

    dir: Path = Path(".stack")
    host: str = "127.0.0.1"
    postgres_port: int = Field(5433, ge=1, le=65535)
    postgres_user: str = "har"
    mlflow_db: str = "mlflow"
    prefect_db: str = "prefect"
    s3_port: int = Field(9000, ge=1, le=65535)
    s3_region: str = "us-east-1"
    artifacts_bucket: str = "har-mlflow"  # MLflow artifacts, proxied by the tracking server
    dvc_bucket: str = "har-dvc"  # the DVC remote `stack`
    lake_bucket: str = "har-lake"  # verified raw files and imported recordings
    mlflow_port: int = Field(5000, ge=1, le=65535)
    mlflow_workers: int = Field(2, ge=1)
    prefect_port: int = Field(4200, ge=1, le=65535)
    worker_health_port: int = Field(8082, ge=1, le=65535)
    startup_timeout_s: float = Field(120.0, gt=0)


class CIParams(Section):
    """`make ci-report` and CI's pipeline job (.ci/pipeline_report.py): dotted params keys applied to
    both the base and the change, so `dvc repro` runs on a small subset. No stage reads this section."""

    overrides: dict[str, Any] = Field(default_factory=dict)


class Params(Section):
    data: DataParams = Field(default_factory=DataParams)
    validate_: ValidateParams = Field(default_factory=ValidateParams, alias="validate")
    preprocess: PreprocessParams
    split: SplitParams = Field(default_factory=SplitParams)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    tune: TuneParams = Field(default_factory=TuneParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    export: ExportParams = Field(default_factory=ExportParams)
    registry: RegistryParams = Field(default_factory=RegistryParams)
    serve: ServeParams = Field(default_factory=ServeParams)
    monitor: MonitorParams = Field(default_factory=MonitorParams)
    pipeline: PipelineParams = Field(default_factory=PipelineParams)
    stack: StackParams = Field(default_factory=StackParams)
    ci: CIParams = Field(default_factory=CIParams)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)


def _format_errors(err: ValidationError, source: str, prefix: str = "") -> str:
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        loc = (prefix, *e["loc"]) if prefix else e["loc"]
        key = ".".join(str(p) for p in loc).replace("validate_", "validate")
        got = e.get("input")
        msg = e["msg"].removeprefix("Value error, ")
        # a whole section as "got" says nothing the message does not
        lines.append(f"  {key}: {msg}" + ("" if isinstance(got, dict) else f" (got {got!r})"))
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


def with_overrides(p: Params, overrides: dict[str, Any], source: str = "overrides") -> Params:
    """A copy of ``p`` with dotted keys set (``{"train.lr": 0.001}``), validated like params.yaml."""
    raw = p.model_dump(mode="json", by_alias=True)
    for key, value in overrides.items():
        _set_dotted(raw, key, value, source)
    return parse_params(raw, source)


def _set_dotted(raw: dict[str, Any], key: str, value: Any, source: str) -> None:
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {key}: '{part}' is not a section")
        node = child
    node[leaf] = value


def data_mirror(override: str | None = None) -> Path | str | None:
    """The dataset mirror: ``override`` (``har data fetch --mirror``), else HAR_DATA_MIRROR.

    A folder holding ``<dataset>/`` is returned as a Path, an ``s3://bucket/prefix`` lake as the
    URL string (checked where it is used, by har.s3.split_s3_url).
    """
    value = override or os.environ.get(MIRROR_ENV)
    if not value:
        return None
    # any s3: value is the lake, so a mistyped URL fails loudly instead of naming a missing folder
    return value if value.startswith("s3:") else Path(value)


def mirror_dir() -> Path | None:
    """The local folder mirror named by HAR_DATA_MIRROR, if set (None for an s3:// lake)."""
    mirror = data_mirror()
    return mirror if isinstance(mirror, Path) else None
