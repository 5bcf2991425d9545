"""The names the stages agree on: sensor channels, the recordings table, the files between stages
and the ONNX serving contract (docs/data.md, docs/models.md).

Everything here is a plain constant or a tiny pure helper, importable from anywhere (no numpy,
torch or pandas), so a name is spelled once and every stage, test and tool reads it from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# Sensors: accelerometer in g, gyroscope in rad/s, in this order.
ACC = ("acc_x", "acc_y", "acc_z")
GYRO = ("gyro_x", "gyro_y", "gyro_z")
SENSOR_CHANNELS = (*ACC, *GYRO)
# preprocess.gravity_split appends these after the sensor channels (Butterworth low-pass split)
BODY_ACC = ("body_acc_x", "body_acc_y", "body_acc_z")
GRAVITY_ACC = ("grav_acc_x", "grav_acc_y", "grav_acc_z")
UNITS = {"t": "s", "acc": "g", "gyro": "rad/s"}

# ---------------------------------------------------------------------------------------------
# data.source: a registered dataset (har/data/registry.py) or your own recordings, whose verified
# snapshot fetch keeps in data.raw_dir/own (docs/own_recordings.md).
OWN_SOURCE = "own"
OWN_SUFFIXES = (".csv", ".parquet")  # the files of data.own_dir that are recordings

# ---------------------------------------------------------------------------------------------
# The canonical recordings table (data/interim/*.parquet): one row per sample.
RECORDING_COLUMNS = ("subject", "session", "sample", "t", *SENSOR_CHANNELS, "label")
# parquet schema metadata keys
META_RATE = "har.sampling_rate_hz"
META_UNITS = "har.units"
META_SOURCE = "har.source"
META_CHANNELS = "har.channels"

# ---------------------------------------------------------------------------------------------
# preprocess.out_dir: the windows and everything fitted on them.
WINDOWS_FILE = "windows.npz"
SPLITS_FILE = "splits.json"
LABEL_MAP_FILE = "label_map.json"
NORMALIZER_FILE = "normalizer.json"
STATS_FILE = "stats.json"
PROCESSED_FILES = (WINDOWS_FILE, SPLITS_FILE, LABEL_MAP_FILE, NORMALIZER_FILE, STATS_FILE)

# ---------------------------------------------------------------------------------------------
# train.out_dir: the trained model (any kind) and the checkpoints `--resume` continues from.
TRAINED_DIR = "trained"
CHECKPOINTS_DIR = "checkpoints"
MODEL_META_FILE = "meta.json"
TORCH_MODEL_FILE = "model.pt"
CLASSIC_MODEL_FILE = "model.skops"
RUN_FILE = "run.json"  # the MLflow run that later stages log to
RUN_MARKER = "mlflow_run_id"  # in the checkpoints: the run `--resume` continues

# ---------------------------------------------------------------------------------------------
# ONNX serving contract: one input, one output, the window spec in metadata_props.
ONNX_INPUT = "window"  # float32 [batch, window_len, n_channels], physical units
ONNX_OUTPUT = "probs"  # float32 [batch, n_classes]
ONNX_META_CLASSES = "har.classes"
ONNX_META_CHANNELS = "har.channels"
ONNX_META_RATE = "har.rate_hz"
ONNX_META_WINDOW_LEN = "har.window_len"
ONNX_META_WINDOW_S = "har.window_s"
ONNX_META_OVERLAP = "har.overlap"
ONNX_META_MODEL = "har.model"
ONNX_META_TRANSITIONS = "har.transitions"  # optional: the classes' transition grammar (JSON)
ONNX_META_QUANTIZATION = "har.quantization"  # optional: absent = fp32; int8-static-qdq (har export)
INT8_QUANTIZATION = "int8-static-qdq"
ONNX_REQUIRED_META = (ONNX_META_CLASSES, ONNX_META_CHANNELS, ONNX_META_RATE, ONNX_META_WINDOW_LEN,
                      ONNX_META_OVERLAP)


def processed_path(out_dir: Path, name: str) -> Path:
    """A preprocess output by its contract name (``WINDOWS_FILE`` …)."""
    if name not in PROCESSED_FILES:
        raise ValueError(f"{name!r} is not a preprocess output; expected one of {PROCESSED_FILES}")
    return Path(out_dir) / name


@dataclass(frozen=True)
class WindowSpec:
    """What a model expects of its input: channel order, rate, window geometry and its classes.

    Written into the ONNX metadata at export (``to_metadata``) and read back by the API, the
    registry's champion scorer and `har predict` (``from_metadata``)."""

    classes: list[str]
    channels: list[str]
    rate_hz: float
    window_len: int
    overlap: float
    window_s: float
    model_type: str = "unknown"
    # preprocess.transitions: which activities each transition class leaves and enters
    # ({"STAND_TO_SIT": {"leaves": [...], "enters": [...]}}); the timeline's context HMM uses it
    transitions: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def step(self) -> int:
        # the rounding of har.preprocess.windows.make_windows, so windows line up with training
        return max(1, int(round(self.window_len * (1 - self.overlap))))

    def to_metadata(self) -> dict[str, str]:
        meta = {ONNX_META_CLASSES: json.dumps(self.classes), ONNX_META_CHANNELS: json.dumps(self.channels),
                ONNX_META_RATE: str(self.rate_hz), ONNX_META_WINDOW_LEN: str(self.window_len),
                ONNX_META_WINDOW_S: str(self.window_s), ONNX_META_OVERLAP: str(self.overlap),
                ONNX_META_MODEL: self.model_type}
        if self.transitions:
            meta[ONNX_META_TRANSITIONS] = json.dumps(self.transitions, sort_keys=True)
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> WindowSpec:
        """ValueError naming what is missing or malformed (callers add the file name)."""
        missing = [k for k in ONNX_REQUIRED_META if k not in meta]
        if missing:
            raise ValueError(f"ONNX metadata_props lack {missing} (not a `har export` model?)")
        try:
            window_len, rate = int(meta[ONNX_META_WINDOW_LEN]), float(meta[ONNX_META_RATE])
            transitions = json.loads(meta.get(ONNX_META_TRANSITIONS, "{}"))
            if not isinstance(transitions, dict):
                raise ValueError(f"{ONNX_META_TRANSITIONS} is not a mapping")
            return cls(classes=[str(c) for c in json.loads(meta[ONNX_META_CLASSES])],
                       channels=[str(c) for c in json.loads(meta[ONNX_META_CHANNELS])],
                       rate_hz=rate, window_len=window_len, overlap=float(meta[ONNX_META_OVERLAP]),
                       window_s=float(meta.get(ONNX_META_WINDOW_S, window_len / rate)),
                       model_type=meta.get(ONNX_META_MODEL, "unknown"),
                       transitions={str(k): {str(e): [str(c) for c in v[e]] for e in ("leaves", "enters")}
                                    for k, v in transitions.items()})
        except (ValueError, TypeError) as err:
            raise ValueError(f"malformed har.* metadata: {err}") from None
