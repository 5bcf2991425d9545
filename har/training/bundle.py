"""A trained model on disk, whatever its kind: ``model.pt`` (torch) or ``model.skops`` (classic)
plus ``meta.json`` (classes, channels, window spec, split). Every later stage loads it through here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from har.config import TrainParams
from har.contracts import CLASSIC_MODEL_FILE as CLASSIC_FILE
from har.contracts import MODEL_META_FILE as META
from har.contracts import TORCH_MODEL_FILE as TORCH_FILE
from har.contracts import WindowSpec
from har.errors import DataError
from har.io import atomic_path


@dataclass
class ModelMeta:
    model: str
    classes: list[str]
    channels: list[str]
    rate_hz: float
    window_len: int
    window_s: float
    overlap: float
    n_params: int = 0
    train_subjects: list[int] = field(default_factory=list)
    val_subjects: list[int] = field(default_factory=list)
    test_subjects: list[int] = field(default_factory=list)
    train_params: dict[str, Any] = field(default_factory=dict)
    # preprocess.transitions when the model was trained: the served timeline's grammar
    transitions: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def window_spec(self) -> WindowSpec:
        return WindowSpec(classes=self.classes, channels=self.channels, rate_hz=self.rate_hz,
                          window_len=self.window_len, overlap=self.overlap, window_s=self.window_s,
                          model_type=self.model, transitions=self.transitions)

    def onnx_metadata(self) -> dict[str, str]:
        """The serving contract's ONNX metadata_props (har.contracts, docs/models.md)."""
        return self.window_spec.to_metadata()


class TrainedModel:
    """predict_proba over raw windows (n, T, C) in physical units, for torch and classic alike."""

    def __init__(self, meta: ModelMeta, net: Any = None, classic: Any = None) -> None:
        self.meta, self.net, self.classic = meta, net, classic

    @property
    def is_deep(self) -> bool:
        return self.net is not None

    def check_input(self, X: np.ndarray, source: str = "windows") -> None:
        m = self.meta
        if X.ndim != 3 or X.shape[1:] != (m.window_len, len(m.channels)):
            raise DataError(f"{source}: windows have shape {X.shape[1:]}, the {m.model} model expects "
                            f"(window_len={m.window_len}, channels={len(m.channels)}: {m.channels})")

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.check_input(X)
        if self.is_deep:
            from har.training.loop import predict_proba

            return predict_proba(self.net, X.astype(np.float32, copy=False))
        return self.classic.predict_proba(X)

    def save(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.is_deep:
            import torch

            with atomic_path(out_dir / TORCH_FILE, ".pt") as tmp:
                torch.save({"state_dict": self.net.state_dict(), "format": "har.torch/1"}, tmp)
            (out_dir / CLASSIC_FILE).unlink(missing_ok=True)
        else:
            self.classic.save(out_dir / CLASSIC_FILE)
            (out_dir / TORCH_FILE).unlink(missing_ok=True)
        with atomic_path(out_dir / META) as tmp:
            tmp.write_text(json.dumps(asdict(self.meta), indent=2))
        return out_dir

    @classmethod
    def load(cls, model_dir: Path) -> TrainedModel:
        meta_path = model_dir / META
        if not meta_path.is_file():
            raise DataError(f"{model_dir}: no {META}; expected the output folder of `har train`")
        try:
            meta = ModelMeta(**json.loads(meta_path.read_text()))
        except (json.JSONDecodeError, TypeError) as e:
            raise DataError(f"{meta_path}: not a har model description ({e})") from None
        from har.models import build_model, get_model

        if get_model(meta.model).kind == "classic":
            from har.models.classic import ClassicModel

            return cls(meta, classic=ClassicModel.load(model_dir / CLASSIC_FILE))
        import torch

        path = model_dir / TORCH_FILE
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        try:
            state = torch.load(path, weights_only=True)
        except Exception as e:  # torch raises several unrelated types for a corrupt file
            raise DataError(f"{path}: not a torch model checkpoint ({type(e).__name__}: {e})") from None
        if not isinstance(state, dict) or state.get("format") != "har.torch/1":
            raise DataError(f"{path}: not a har torch model (missing format 'har.torch/1')")
        tp = TrainParams.model_validate(meta.train_params)
        net = build_model(meta.model, tp, len(meta.channels), len(meta.classes))
        try:
            net.load_state_dict(state["state_dict"])
        except RuntimeError as e:
            raise DataError(f"{path}: weights do not fit a {meta.model} model as described in "
                            f"{meta_path}: {str(e).splitlines()[0]}") from None
        net.eval()
        return cls(meta, net=net)
