"""Kamei-style logistic regression (``logreg``) and the log1p standardiser all linear models share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from defectops.training.models.base import JITModel
from defectops.training.models.inputs import FloatArray, Inputs
from defectops.training.models.persistence import PERSISTED_MODULE


def _signed_log1p(x: FloatArray) -> FloatArray:
    result: FloatArray = np.sign(x) * np.log1p(np.abs(x))
    return result


class _Standardiser:
    """log1p (signed) then standardise with training mean and standard deviation (constant columns: 1)."""

    __module__ = PERSISTED_MODULE  # the name saved models know it by (see persistence)

    def __init__(self, mean: FloatArray, scale: FloatArray) -> None:
        self.mean = mean
        self.scale = scale

    @classmethod
    def fit(cls, numeric: FloatArray, w: FloatArray | None = None) -> _Standardiser:
        logged = _signed_log1p(numeric)
        mean = np.average(logged, axis=0, weights=w)
        std = np.sqrt(np.average((logged - mean) ** 2, axis=0, weights=w))
        return cls(mean, np.where(std > 0, std, 1.0))

    def transform(self, numeric: FloatArray) -> FloatArray:
        result: FloatArray = (_signed_log1p(numeric) - self.mean) / self.scale
        return result

    def state(self) -> dict[str, list[float]]:
        """The JSON-able fitted state (``mean`` and ``scale``), as saved in ``model.json``."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> _Standardiser:
        return cls(np.asarray(state["mean"], dtype=np.float64), np.asarray(state["scale"], dtype=np.float64))

    def linear_terms(
        self, inputs: Inputs, coef: FloatArray, intercept: float, features: Sequence[str]
    ) -> list[tuple[float, list[tuple[str, float, float]]]]:
        """Exact explanation of a linear model on standardised inputs: ``coef_j * z_j`` per feature."""
        terms = self.transform(np.nan_to_num(inputs.numeric)) * coef
        return [
            (
                intercept,
                [(n, float(inputs.numeric[i, j]), float(terms[i, j])) for j, n in enumerate(features)],
            )
            for i in range(len(inputs))
        ]


class LogisticJIT(JITModel):
    """Kamei-style logistic regression: log1p, standardisation, class weights, L2 penalty ``1/C``."""

    __module__ = PERSISTED_MODULE  # the name saved models know it by (see persistence)

    kind = "logreg"

    def __init__(
        self,
        features: Sequence[str] | None = None,
        C: float = 1.0,
        class_weight: Literal["balanced"] | None = "balanced",
        half_life_days: float | None = None,
        cv_folds: int = 3,
        cv_gap_days: float = 0.0,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.C = C
        self.class_weight = class_weight
        self.half_life_days = half_life_days
        self.cv_folds = cv_folds
        self.cv_gap_days = cv_gap_days
        self.random_state = random_state

    def _fit_core(self, inputs: Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        from sklearn.linear_model import LogisticRegression

        numeric = np.nan_to_num(inputs.numeric)
        self.scaler_ = _Standardiser.fit(numeric)
        lr = LogisticRegression(C=self.C, max_iter=5000, random_state=self.random_state)
        lr.fit(self.scaler_.transform(numeric), y, sample_weight=w)
        self.coef_ = np.asarray(lr.coef_[0], dtype=np.float64)
        self.intercept_ = float(lr.intercept_[0])

    def _raw(self, inputs: Inputs) -> FloatArray:
        result: FloatArray = (
            self.scaler_.transform(np.nan_to_num(inputs.numeric)) @ self.coef_ + self.intercept_
        )
        return result

    def _terms(self, inputs: Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        return self.scaler_.linear_terms(inputs, self.coef_, self.intercept_, self.features_)

    def _state(self) -> dict[str, Any]:
        return {**self.scaler_.state(), "coef": self.coef_.tolist(), "intercept": self.intercept_}

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        self.scaler_ = _Standardiser.from_state(state)
        self.coef_ = np.asarray(state["coef"], dtype=np.float64)
        self.intercept_ = float(state["intercept"])
