"""The online model (``online``): SGD logistic regression that keeps learning with ``partial_fit``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from defectops.errors import InputError
from defectops.training.models.base import JITModel
from defectops.training.models.inputs import FloatArray, Inputs
from defectops.training.models.linear import _Standardiser
from defectops.training.models.persistence import PERSISTED_MODULE, skops_dump, skops_load


class OnlineJIT(JITModel):
    """Logistic regression learned by SGD (log-loss) that keeps learning from newly labelled changes with
    :meth:`partial_fit`, no full retrain. Inputs are log1p-standardised with the statistics of the first
    fit (frozen, so earlier weights keep their meaning). Probabilities: Platt scaling from the first fit's
    time-ordered folds, whose offset then follows the running class counts (prior shift: ``b`` moves by the
    change of ``logit(positive share)``) with every ``partial_fit``."""

    __module__ = PERSISTED_MODULE  # the name saved models know it by (see persistence)

    kind = "online"

    def __init__(
        self,
        features: Sequence[str] | None = None,
        alpha: float = 1e-3,
        epochs: int = 5,
        class_weight: Literal["balanced"] | None = "balanced",
        half_life_days: float | None = None,
        cv_folds: int = 3,
        cv_gap_days: float = 0.0,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.alpha = alpha
        self.epochs = epochs
        self.class_weight = class_weight
        self.half_life_days = half_life_days
        self.cv_folds = cv_folds
        self.cv_gap_days = cv_gap_days
        self.random_state = random_state

    def _new_sgd(self) -> Any:
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(
            loss="log_loss",
            alpha=self.alpha,
            max_iter=self.epochs,
            tol=None,
            learning_rate="optimal",
            average=True,
            random_state=self.random_state,
        )

    def _fit_core(self, inputs: Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        numeric = np.nan_to_num(inputs.numeric)
        self.scaler_ = _Standardiser.fit(numeric)
        self.sgd_ = self._new_sgd().fit(self.scaler_.transform(numeric), y, sample_weight=w)
        self.class_counts_ = np.bincount(y, minlength=2).astype(np.float64)

    def fit(
        self, X: object, y: object, sample_weight: object | None = None, times: object | None = None
    ) -> OnlineJIT:
        super().fit(X, y, sample_weight=sample_weight, times=times)
        self.fit_calibration_ = self.calibration_
        self.fit_counts_ = self.class_counts_.copy()
        return self

    def _prior_calibration(self) -> tuple[float, float, float]:
        """The fit's calibration with its offset moved by the change in the log prior odds since the fit."""

        def log_odds(counts: FloatArray) -> float:
            rate = min(max(float(counts[1] / max(counts.sum(), 1.0)), 1e-6), 1 - 1e-6)
            return math.log(rate / (1 - rate))

        a, b, threshold = self.fit_calibration_
        if self.class_weight != "balanced":
            return a, b, threshold
        return a, b + log_odds(self.class_counts_) - log_odds(self.fit_counts_), threshold

    def partial_fit(self, X: object, y: object, sample_weight: object | None = None) -> OnlineJIT:
        """Learn from newly labelled changes: one SGD pass over them, weights balanced by the running class
        counts (so the rare class keeps its weight in small batches), then refresh the prior correction."""
        labels = self._labels(y)
        if not hasattr(self, "sgd_"):
            if len(np.unique(labels)) < 2:
                raise InputError("the first batch of an online model needs both classes")
            self.features_ = self._choose_features(X)
            inputs = self._inputs(X, self.features_)
            numeric = np.nan_to_num(inputs.numeric)
            self.scaler_ = _Standardiser.fit(numeric)
            self.sgd_ = self._new_sgd()
            self.class_counts_ = np.zeros(2)
            self.fit_counts_ = np.array([1.0, 1.0])  # a balanced model's implicit prior: 1:1
            self.fit_calibration_ = self._fallback_calibration(0.5)
            self.classes_ = np.array([0, 1])
            self.n_features_in_ = len(self.features_)
            self.n_train_ = 0
        else:
            numeric = np.nan_to_num(self._inputs(X).numeric)
        if len(labels) != numeric.shape[0]:
            raise InputError("X and y differ in length")
        self.class_counts_ = self.class_counts_ + np.bincount(labels, minlength=2)
        w = (
            np.ones(len(labels))
            if sample_weight is None
            else np.asarray(sample_weight, dtype=np.float64).ravel()
        )
        if self.class_weight == "balanced":
            total = self.class_counts_.sum()
            per_class = total / (2.0 * np.maximum(self.class_counts_, 1.0))
            w = w * per_class[labels]
        self.sgd_.partial_fit(
            self.scaler_.transform(numeric), labels, classes=np.array([0, 1]), sample_weight=w
        )
        self.n_train_ = int(self.n_train_) + len(labels)
        self.positive_rate_ = float(self.class_counts_[1] / self.class_counts_.sum())
        self.calibration_ = self._prior_calibration()
        return self

    def _raw(self, inputs: Inputs) -> FloatArray:
        result: FloatArray = np.asarray(
            self.sgd_.decision_function(self.scaler_.transform(np.nan_to_num(inputs.numeric))),
            dtype=np.float64,
        )
        return result

    def _terms(self, inputs: Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        coef = np.asarray(self.sgd_.coef_[0], dtype=np.float64)
        return self.scaler_.linear_terms(inputs, coef, float(self.sgd_.intercept_[0]), self.features_)

    def _state(self) -> dict[str, Any]:
        return {
            **self.scaler_.state(),
            "class_counts": self.class_counts_.tolist(),
            "fit_counts": self.fit_counts_.tolist(),
            "fit_calibration": list(self.fit_calibration_),
        }

    def _save_files(self, folder: Path) -> None:
        skops_dump(self.sgd_, folder / "sgd.skops")

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        self.scaler_ = _Standardiser.from_state(state)
        self.class_counts_ = np.asarray(state["class_counts"], dtype=np.float64)
        self.fit_counts_ = np.asarray(state["fit_counts"], dtype=np.float64)
        a, b, threshold = (float(v) for v in state["fit_calibration"])
        self.fit_calibration_ = (a, b, threshold)
        self.sgd_ = skops_load(folder / "sgd.skops")
