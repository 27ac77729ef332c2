"""The model kinds: which class each name stands for, creating a fresh model, loading a saved one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np

from defectops.errors import InputError, ModelError
from defectops.training.models.base import JITModel
from defectops.training.models.blend import BlendJIT
from defectops.training.models.boosting import LightGBMJIT
from defectops.training.models.forest import ForestJIT
from defectops.training.models.hybrid import HybridJIT
from defectops.training.models.linear import LogisticJIT
from defectops.training.models.online import OnlineJIT
from defectops.training.models.persistence import FORMAT
from defectops.training.models.starter import StarterJIT
from defectops.training.models.text import TextJIT
from defectops.training.risk import RiskBands

ModelKind = Literal["lightgbm", "logreg", "rf", "online", "text", "hybrid"]
#: The kinds a user names (``--model``). ``blend`` is not one of them: the default chooses it on the training
#: part (``training.choice``), and a pipeline that finds a blend champion retrains the default, which
#: chooses again.
MODEL_KINDS: tuple[str, ...] = ("lightgbm", "logreg", "rf", "online", "text", "hybrid")
DEFAULT_MODEL: ModelKind = "lightgbm"

MODEL_CLASSES: dict[str, type[JITModel]] = {
    "lightgbm": LightGBMJIT,
    "logreg": LogisticJIT,
    "rf": ForestJIT,
    "online": OnlineJIT,
    "text": TextJIT,
    "blend": BlendJIT,
    "hybrid": HybridJIT,
}
#: Kinds that are loaded but never trained on one repository (``starter``: built from other projects).
LOADABLE_CLASSES: dict[str, type[JITModel]] = {**MODEL_CLASSES, "starter": StarterJIT}


def make_model(kind: str = DEFAULT_MODEL, **params: Any) -> JITModel:
    """A fresh, unfitted model of ``kind`` (one of :data:`MODEL_CLASSES`) with ``params``."""
    if kind not in MODEL_CLASSES:
        raise InputError(f"unknown model {kind!r}: choose one of {', '.join(MODEL_KINDS)}")
    try:
        return MODEL_CLASSES[kind](**params)
    except TypeError as exc:
        raise InputError(f"invalid parameters for the {kind} model: {exc}") from None


def load_model(path: Path) -> JITModel:
    """Load a model written by :meth:`JITModel.save` (skops files are checked against an allow-list of
    scikit-learn/NumPy/SciPy types; nothing is unpickled)."""
    document_path = path / "model.json"
    if not document_path.is_file():
        raise ModelError(f"{path}: no model.json, not a saved defectops model")
    try:
        document = json.loads(document_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{document_path}: unreadable ({exc})") from None
    if document.get("format") != FORMAT:
        raise ModelError(f"{path}: model format {document.get('format')!r} is not supported")
    kind = str(document.get("kind"))
    if kind not in LOADABLE_CLASSES:
        raise ModelError(f"{path}: unknown model kind {kind!r}")
    params = dict(document["params"])
    if params.get("features") is not None:
        params["features"] = tuple(params["features"])
    if params.get("training_data") is not None:
        params["training_data"] = tuple(params["training_data"])
    model = LOADABLE_CLASSES[kind](**params)
    model.features_ = list(document["features"])
    model.classes_ = np.array([0, 1])
    model.n_features_in_ = len(model.features_)
    model.n_train_ = int(document.get("n_train", 0))
    model.positive_rate_ = float(document.get("positive_rate", float("nan")))
    if isinstance(document.get("bands"), dict):
        model.bands_ = RiskBands.from_dict(document["bands"]).as_dict()  # checked on the way in
    typical = document.get("typical")
    if isinstance(typical, dict):
        model.typical_ = {str(k): [float(v[0]), float(v[1])] for k, v in typical.items()}
    calibration = document["calibration"]
    model.calibration_ = (float(calibration["a"]), float(calibration["b"]), float(document["threshold"]))
    try:
        model._restore(document.get("state", {}), path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: the model files do not load ({type(exc).__name__}: {exc})") from None
    return model
