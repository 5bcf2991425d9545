"""Classic baseline: ``FeatureExtractor`` features + a scikit-learn tree ensemble.

It exports to ONE ONNX file with the deep models' contract (``window`` [batch, T, C] float32 in,
``probs`` [batch, n_classes] float32 out): the torch feature graph and the skl2onnx tree graph are
merged, so serving never needs to know which kind of model it runs.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import torch
from pydantic import Field
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from har.config import Section
from har.contracts import ONNX_INPUT, ONNX_OUTPUT
from har.errors import DataError
from har.io import atomic_path
from har.models._features import FeatureExtractor, check_windows, extract_features
from har.models._registry import register_model

__all__ = ["ClassicModel", "ClassicParams"]


class ClassicParams(Section):
    """``train.classic``"""

    estimator: Literal["hgb", "rf"] = "hgb"
    max_iter: int = Field(300, ge=1, description="HGB boosting rounds / RF trees")
    learning_rate: float = Field(0.1, gt=0)
    max_leaf_nodes: int = Field(31, ge=2)
    # Unregularised HGB overfits these features (test macro-F1 fell to 0.30 by round 300); 1.0 scored
    # best of 0.1/1/5 on the validation subjects.
    l2_regularization: float = Field(1.0, ge=0)

_FORMAT = "har.classic/1"
# skops only rebuilds types it is told to trust; anything outside these packages is refused.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.", "scipy.")
_ML_OPSET = 3  # ai.onnx.ml TreeEnsembleClassifier v3, supported by skl2onnx and onnxruntime


Estimator = HistGradientBoostingClassifier | RandomForestClassifier


@contextmanager
def _int_missing_flags() -> Iterator[None]:
    """skl2onnx 1.20 passes a Python bool for HGB leaves' missing flag; onnx ≥ 1.23 wants ints."""
    from skl2onnx.common import tree_ensemble as te

    orig = te.add_node

    def add_node(*args: Any, **kwargs: Any) -> Any:
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        return orig(*args, **kwargs)

    te.add_node = add_node
    try:
        yield
    finally:
        te.add_node = orig


class ClassicModel:
    """Feature extraction + HGB / random forest, with ``predict_proba`` over all ``n_classes``."""

    def __init__(self, params: ClassicParams, channels: list[str], window_len: int, rate_hz: float,
                 n_classes: int, seed: int = 42) -> None:
        if n_classes < 2:
            raise ValueError(f"n_classes must be ≥ 2, got {n_classes}")
        self.params = params
        self.channels = list(channels)
        self.window_len = int(window_len)
        self.rate_hz = float(rate_hz)
        self.n_classes = int(n_classes)
        self.seed = int(seed)
        self.extractor = FeatureExtractor(self.channels, self.window_len, self.rate_hz).eval()
        self.estimator: Estimator | None = None

    # ----------------------------------------------------------------------------- training
    def _new_estimator(self) -> Estimator:
        p = self.params
        if p.estimator == "hgb":
            return HistGradientBoostingClassifier(max_iter=p.max_iter, learning_rate=p.learning_rate,
                                                  max_leaf_nodes=p.max_leaf_nodes, random_state=self.seed,
                                                  l2_regularization=p.l2_regularization, early_stopping=False)
        if p.estimator == "rf":
            return RandomForestClassifier(n_estimators=p.max_iter, n_jobs=2, random_state=self.seed)
        raise ValueError(f"unknown classic estimator {p.estimator!r}, expected 'hgb' or 'rf'")

    def features(self, X: np.ndarray) -> np.ndarray:
        """(n, T, C) windows → (n, F) float32 features, after checking the window shape."""
        X = check_windows(X, self.channels, self.window_len)
        return extract_features(X, self.channels, self.rate_hz, extractor=self.extractor)

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> ClassicModel:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise DataError(f"labels y: expected shape ({len(X)},) matching X, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer) or len(y) == 0 or y.min() < 0 or y.max() >= self.n_classes:
            raise DataError(f"labels y: expected integers in [0, {self.n_classes}), got dtype {y.dtype} "
                            f"range [{y.min() if len(y) else None}, {y.max() if len(y) else None}]")
        if len(np.unique(y)) < 2:
            raise DataError("labels y: need at least two distinct classes to fit")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != y.shape:
                raise DataError(f"sample_weight: expected shape {y.shape}, got {sample_weight.shape}")
        est = self._new_estimator()
        est.fit(self.features(X), y.astype(np.int64), sample_weight=sample_weight)
        self.estimator = est
        return self

    def _fitted(self) -> Estimator:
        if self.estimator is None:
            raise ValueError("ClassicModel is not fitted: call fit() or load() first")
        return self.estimator

    # ----------------------------------------------------------------------------- inference
    @property
    def _class_index(self) -> np.ndarray:
        """Column in the n_classes output for each class the estimator saw."""
        return np.asarray(self._fitted().classes_, dtype=np.int64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, n_classes) float32; classes absent from training get probability 0."""
        est = self._fitted()
        p = est.predict_proba(self.features(X))
        out = np.zeros((len(p), self.n_classes), np.float32)
        out[:, self._class_index] = p
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X).argmax(1).astype(np.int64)

    @property
    def n_params(self) -> int:
        """Total tree nodes, the classic counterpart of a network's parameter count."""
        est = self._fitted()
        if isinstance(est, HistGradientBoostingClassifier):
            return int(sum(len(pred.nodes) for it in est._predictors for pred in it))
        return int(sum(t.tree_.node_count for t in est.estimators_))

    @property
    def feature_names(self) -> list[str]:
        return self.extractor.feature_names

    # ----------------------------------------------------------------------------- persistence
    def save(self, path: Path) -> None:
        """skops archive (no pickle): config + fitted estimator; the extractor is rebuilt on load."""
        import skops.io as sio

        state: dict[str, Any] = {
            "format": _FORMAT, "params": self.params.model_dump(mode="json"), "channels": self.channels,
            "window_len": self.window_len, "rate_hz": self.rate_hz, "n_classes": self.n_classes,
            "seed": self.seed, "estimator": self._fitted(),
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".skops") as tmp:
            sio.dump(state, tmp)

    @classmethod
    def load(cls, path: Path) -> ClassicModel:
        import skops.io as sio

        path = Path(path)
        if not path.is_file():
            raise DataError(f"classic model {path}: file not found")
        try:
            untrusted = sio.get_untrusted_types(file=path)
            bad = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
            if bad:
                raise DataError(f"classic model {path}: refuses to load untrusted types {bad}")
            state = sio.load(path, trusted=untrusted)
        except DataError:
            raise
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError, OSError) as e:
            raise DataError(f"classic model {path}: not a valid skops archive ({e})") from e
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise DataError(f"classic model {path}: not a saved ClassicModel (expected format {_FORMAT!r})")
        est = state.get("estimator")
        if not isinstance(est, HistGradientBoostingClassifier | RandomForestClassifier):
            raise DataError(f"classic model {path}: estimator is {type(est).__name__}, expected HGB or RF")
        model = cls(ClassicParams(**state["params"]), list(state["channels"]), int(state["window_len"]),
                    float(state["rate_hz"]), int(state["n_classes"]), int(state["seed"]))
        model.estimator = est
        return model

    # ----------------------------------------------------------------------------- ONNX
    def _features_onnx(self, opset: int) -> onnx.ModelProto:
        example = torch.zeros(2, self.window_len, len(self.channels))
        batch = torch.export.Dim("batch", min=1)
        prog = torch.onnx.export(self.extractor, (example,), dynamo=True, opset_version=opset,
                                 input_names=[ONNX_INPUT], output_names=["features"],
                                 dynamic_shapes=({0: batch},), verbose=False)
        if prog is None:
            raise RuntimeError("torch.onnx.export returned no program")
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "features.onnx"
            prog.save(str(f))
            return onnx.load(str(f))

    def _trees_onnx(self, opset: int) -> onnx.ModelProto:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        est = self._fitted()
        with _int_missing_flags():
            features = FloatTensorType([None, self.extractor.n_features])
            return convert_sklearn(est, initial_types=[("features", features)],
                                   target_opset={"": opset, "ai.onnx.ml": _ML_OPSET},
                                   options={id(est): {"zipmap": False}})

    def to_onnx(self, path: Path, *, opset: int = 18) -> None:
        """Write one ONNX model: ``window`` [batch, T, C] float32 → ``probs`` [batch, n_classes].

        Features come from the exported torch extractor, probabilities from the skl2onnx trees
        (float32 thresholds adjusted by skl2onnx to reproduce sklearn's float64 comparisons). If the
        estimator saw fewer than ``n_classes`` classes, a 0/1 matmul scatters its columns into
        ``n_classes`` with zeros for the unseen ones, exactly as ``predict_proba`` does.
        """
        feats = self._features_onnx(opset)
        trees = onnx.compose.add_prefix(self._trees_onnx(opset), "clf_")
        ir = max(feats.ir_version, trees.ir_version)
        feats.ir_version = trees.ir_version = ir
        merged = onnx.compose.merge_models(feats, trees, io_map=[("features", "clf_features")],
                                           outputs=["clf_probabilities"])
        g = merged.graph
        src = "clf_probabilities"
        idx = self._class_index
        if len(idx) != self.n_classes or not np.array_equal(idx, np.arange(self.n_classes)):
            scatter = np.zeros((len(idx), self.n_classes), np.float32)
            scatter[np.arange(len(idx)), idx] = 1.0
            g.initializer.append(onnx.numpy_helper.from_array(scatter, "class_scatter"))
            g.node.append(onnx.helper.make_node("MatMul", [src, "class_scatter"], [ONNX_OUTPUT]))
        else:
            g.node.append(onnx.helper.make_node("Identity", [src], [ONNX_OUTPUT]))
        del g.output[:]
        g.output.append(onnx.helper.make_tensor_value_info(ONNX_OUTPUT, onnx.TensorProto.FLOAT,
                                                           ["batch", self.n_classes]))
        g.name = f"har_classic_{self.params.estimator}"
        onnx.checker.check_model(merged, full_check=True)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".onnx") as tmp:
            onnx.save(merged, str(tmp))


@register_model("classic", ClassicParams, kind="classic")
def build(p: ClassicParams, channels: list[str], window_len: int, rate_hz: float, n_classes: int,
          seed: int) -> ClassicModel:
    """Time and frequency features + a gradient-boosted tree ensemble (HGB) or a random forest."""
    return ClassicModel(p, channels, window_len, rate_hz, n_classes, seed)
