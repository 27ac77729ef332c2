"""The common base of every model: input checks, weights, Platt calibration on time-ordered folds, the
threshold, explanations and saving (see :mod:`defectops.training.models` for the design)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from defectops import __version__
from defectops.data import FEATURES, MESSAGE, PATHS
from defectops.errors import InputError, ModelError
from defectops.training.models.calibration import best_f1_threshold, platt_scaling, sigmoid
from defectops.training.models.explanation import Contribution, Explanation
from defectops.training.models.inputs import (
    NOT_FEATURES,
    FloatArray,
    Inputs,
    balanced_weights,
    recency_weights,
    times_of,
    typical_ranges,
)
from defectops.training.models.persistence import FORMAT, jsonable
from defectops.training.risk import RiskBands


class JITModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Common machinery: input checks, weights, Platt calibration on time-ordered folds, threshold,
    explanations, persistence. Subclasses implement ``_fit_core``, ``_raw`` and ``_terms``."""

    kind: ClassVar[str] = ""
    #: The raw score at which a balanced model is undecided (0 for log-odds, 0.5 for a forest vote).
    _neutral_raw: ClassVar[float] = 0.0
    _uses_text: ClassVar[bool] = False
    #: True for a model trained on other projects (the starter): every surface that shows a model says so.
    cross_project: ClassVar[bool] = False

    # Common constructor parameters (each subclass repeats them in its __init__ for get_params).
    features: Sequence[str] | None
    class_weight: Literal["balanced"] | None
    half_life_days: float | None
    cv_folds: int
    cv_gap_days: float
    random_state: int

    # ------------------------------------------------------------------ inputs

    def _choose_features(self, X: object) -> list[str]:
        if self.features is not None:
            return list(self.features)
        if isinstance(X, pd.DataFrame):
            canonical = [c for c in FEATURES if c in X.columns]
            if canonical:
                return canonical
            numeric = [
                str(c)
                for c in X.columns
                if str(c) not in NOT_FEATURES and pd.api.types.is_numeric_dtype(X[c])
            ]
            if numeric:
                return numeric
            raise InputError("X has no numeric feature columns")
        array = np.asarray(X)
        if array.ndim != 2:
            raise InputError("X must be a 2-D table")
        return [f"f{i}" for i in range(array.shape[1])]

    def _inputs(self, X: object, features: Sequence[str] | None = None) -> Inputs:
        names = list(features if features is not None else self.features_)
        if isinstance(X, pd.DataFrame):
            missing = [c for c in names if c not in X.columns]
            if missing:
                raise InputError(f"missing feature column(s): {', '.join(missing)}")
            numeric = X.loc[:, names].to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            numeric = np.asarray(X, dtype=np.float64)
            if numeric.ndim == 1:
                numeric = numeric.reshape(1, -1)
            if numeric.ndim != 2 or numeric.shape[1] != len(names):
                raise InputError(f"X must have {len(names)} columns ({', '.join(names)})")
        message = paths = None
        if self._uses_text:
            if not isinstance(X, pd.DataFrame) or MESSAGE not in X.columns or PATHS not in X.columns:
                raise InputError(f"the {self.kind} model needs the text columns '{MESSAGE}' and '{PATHS}'")
            message = X[MESSAGE].fillna("").astype(str).tolist()
            paths = X[PATHS].fillna("").astype(str).tolist()
        return Inputs(numeric, message, paths)

    @staticmethod
    def _labels(y: object) -> npt.NDArray[np.int64]:
        labels = np.asarray(y).ravel()
        if labels.dtype == bool:
            labels = labels.astype(np.int64)
        if not np.isin(labels, (0, 1)).all():
            raise InputError("labels must be 0 or 1")
        result: npt.NDArray[np.int64] = labels.astype(np.int64)
        return result

    def _weights(
        self, y: npt.NDArray[np.int64], sample_weight: object | None, times: pd.Series | None
    ) -> FloatArray:
        w = np.ones(len(y), dtype=np.float64)
        if sample_weight is not None:
            w = w * np.asarray(sample_weight, dtype=np.float64).ravel()
        recency = recency_weights(times, self.half_life_days)
        if recency is not None:
            w = w * recency
        if self.class_weight == "balanced":
            w = balanced_weights(y, w)
        elif self.class_weight is not None:
            raise InputError(f"class_weight must be 'balanced' or None, got {self.class_weight!r}")
        return w

    # ------------------------------------------------------------------ subclass hooks

    def _fit_core(self, inputs: Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        raise NotImplementedError

    def _raw(self, inputs: Inputs) -> FloatArray:
        raise NotImplementedError

    def _terms(self, inputs: Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        """Per row: (bias, [(feature, value, term)]) with ``raw = bias + sum(term)`` exactly."""
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """JSON-able fitted state beyond features/calibration/threshold (subclasses extend)."""
        return {}

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        raise NotImplementedError

    def _save_files(self, folder: Path) -> None:
        """Write binary artifacts (booster text, skops files) into ``folder``."""

    # ------------------------------------------------------------------ the estimator contract

    def fit(
        self,
        X: object,
        y: object,
        sample_weight: object | None = None,
        times: object | None = None,
    ) -> JITModel:
        """Fit on all rows; with ``cv_folds > 0``, first fit Platt calibration and the decision threshold on
        out-of-fold scores of time-ordered rolling-origin folds (so nothing is tuned on future rows).

        ``times`` (or a ``time`` column of ``X``) orders the folds and feeds ``half_life_days``; without
        them the row order is taken as time order.
        """
        labels = self._labels(y)
        self.features_ = self._choose_features(X)
        inputs = self._inputs(X, self.features_)
        if len(inputs) != len(labels):
            raise InputError(f"X has {len(inputs)} rows but y has {len(labels)}")
        if len(np.unique(labels)) < 2:
            raise InputError("training needs both defect-inducing and clean changes")
        stamps = times_of(X, times)
        if stamps is not None and len(stamps) != len(labels):
            raise InputError("times and y differ in length")
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(self.features_)
        self._out_of_fold: tuple[FloatArray, npt.NDArray[np.int64]] | None = None
        self.calibration_ = self._calibrate(inputs, labels, sample_weight, stamps)
        self._fit_core(inputs, labels, self._weights(labels, sample_weight, stamps))
        self.n_train_ = len(labels)
        self.positive_rate_ = float(labels.mean())
        self.typical_ = typical_ranges(inputs.numeric, self.features_)
        scores, truth = self._out_of_fold or (None, None)
        # Kept as a plain document: skops (MLflow's format) then needs no new trusted type to load the model.
        self.bands_ = RiskBands.from_base_rate(self.positive_rate_, scores, truth).as_dict()
        del self._out_of_fold
        return self

    def typical_ranges(self) -> dict[str, list[float]]:
        """Per feature, the middle half of the training values (``[25th, 75th percentile]``); empty for a
        model saved before they were kept."""
        found = getattr(self, "typical_", None)
        return dict(found) if isinstance(found, Mapping) else {}

    def risk_bands(self) -> RiskBands:
        """The bands fitted with the model (tied to its base rate, backed by out-of-fold examples); for a
        model saved before bands were kept, or updated online since, plain multiples of its base rate."""
        self._check_fitted()
        document = getattr(self, "bands_", None)
        rate = float(getattr(self, "positive_rate_", float("nan")))
        if isinstance(document, Mapping):
            fitted = RiskBands.from_dict(document)
            if fitted.base_rate == rate or not math.isfinite(rate):
                return fitted
        if not math.isfinite(rate):
            raise ModelError("the model records no base rate of defect-inducing changes; no risk bands")
        return RiskBands.from_base_rate(rate)

    def _calibrate(
        self,
        inputs: Inputs,
        labels: npt.NDArray[np.int64],
        sample_weight: object | None,
        stamps: pd.Series | None,
    ) -> tuple[float, float, float]:
        """(a, b, threshold) from out-of-fold raw scores; a neutral fallback when folds cannot be made."""
        from defectops.data import rolling_origin

        fallback = self._fallback_calibration(float(labels.mean()))
        if self.cv_folds <= 0 or len(labels) < 40:
            return fallback
        order_times = (
            stamps if stamps is not None else pd.Series(pd.to_datetime(np.arange(len(labels)), unit="s"))
        )
        try:
            folds = rolling_origin(
                order_times,
                n_folds=self.cv_folds,
                test_fraction=0.3,
                gap=timedelta(days=self.cv_gap_days),
                min_train_rows=20,
            )
        except InputError:
            return fallback
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
        raws: list[FloatArray] = []
        ys: list[npt.NDArray[np.int64]] = []
        for fold in folds:
            if len(np.unique(labels[fold.train])) < 2:
                continue
            inner = self._fresh()
            inner.features_ = self.features_
            fold_times = None if stamps is None else stamps.iloc[fold.train]
            w = inner._weights(
                labels[fold.train], None if weights is None else weights[fold.train], fold_times
            )
            inner._fit_core(inputs.take(fold.train), labels[fold.train], w)
            raws.append(inner._raw(inputs.take(fold.test)))
            ys.append(labels[fold.test])
        if not raws:
            return fallback
        raw, truth = np.concatenate(raws), np.concatenate(ys)
        if len(np.unique(truth)) < 2 or np.ptp(raw) == 0:
            return fallback
        a, b = platt_scaling(raw, truth)
        if not a > 0:
            return fallback
        calibrated = sigmoid(a * raw + b)
        self._out_of_fold = (calibrated, truth)  # what the risk bands are checked against
        threshold = best_f1_threshold(truth, calibrated)
        return a, b, threshold

    def _fallback_calibration(self, positive_rate: float) -> tuple[float, float, float]:
        """Without folds: undo the class balancing by prior correction (``b = logit(positive rate)``)."""
        rate = min(max(positive_rate, 1e-6), 1 - 1e-6)
        shift = math.log(rate / (1 - rate)) if self.class_weight == "balanced" else 0.0
        a = 1.0 if self._neutral_raw == 0.0 else 4.0
        b = shift - a * self._neutral_raw
        threshold = float(sigmoid(np.array([a * self._neutral_raw + b]))[0])
        return a, b, min(max(threshold, 1e-6), 1 - 1e-6)

    def _fresh(self) -> JITModel:
        params = self.get_params(deep=False)
        params["cv_folds"] = 0
        return type(self)(**params)

    def _check_fitted(self) -> None:
        if not hasattr(self, "calibration_"):
            raise ModelError(f"this {self.kind} model is not fitted")

    @property
    def threshold_(self) -> float:
        """The decision threshold on calibrated probabilities (maximises F1 on the calibration folds)."""
        self._check_fitted()
        return float(self.calibration_[2])

    def decision_function(self, X: object) -> FloatArray:
        """Calibrated log-odds of being defect-inducing."""
        self._check_fitted()
        a, b, _ = self.calibration_
        result: FloatArray = a * self._raw(self._inputs(X)) + b
        return result

    def predict_proba(self, X: object) -> FloatArray:
        """``[[P(clean), P(defect-inducing)], ...]``, calibrated."""
        p = sigmoid(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: object) -> npt.NDArray[np.int64]:
        """1 where the calibrated probability reaches :attr:`threshold_`."""
        result: npt.NDArray[np.int64] = (self.predict_proba(X)[:, 1] >= self.threshold_).astype(np.int64)
        return result

    def explain(self, X: object, top_k: int = 5) -> list[Explanation]:
        """Per row, the ``top_k`` features that raised or lowered the risk most (exact terms; see module)."""
        self._check_fitted()
        if top_k < 1:
            raise InputError("top_k must be at least 1")
        a, b, _ = self.calibration_
        out: list[Explanation] = []
        for bias, terms in self._terms(self._inputs(X)):
            scaled = [(name, value, a * term) for name, value, term in terms]
            scaled.sort(key=lambda t: (-abs(t[2]), t[0]))
            top = scaled[:top_k]
            rest = float(sum(t[2] for t in scaled[top_k:]))
            base = a * bias + b
            logit = base + sum(t[2] for t in scaled)
            out.append(
                Explanation(
                    probability=float(sigmoid(np.array([logit]))[0]),
                    base=float(base),
                    contributions=tuple(Contribution(n, float(v), float(c)) for n, v, c in top),
                    rest=rest,
                )
            )
        return out

    def importance(self, X: object, max_rows: int = 2000) -> list[tuple[str, float]]:
        """Global importance: mean absolute contribution (calibrated log-odds) over up to ``max_rows`` rows,
        largest first."""
        self._check_fitted()
        frame = X.iloc[:max_rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[:max_rows]
        a = self.calibration_[0]
        totals: dict[str, float] = {}
        rows = 0
        for _, terms in self._terms(self._inputs(frame)):
            rows += 1
            for name, _value, term in terms:
                totals[name] = totals.get(name, 0.0) + abs(a * term)
        return sorted(((k, v / max(rows, 1)) for k, v in totals.items()), key=lambda t: (-t[1], t[0]))

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path) -> Path:
        """Write the fitted model to folder ``path``: ``model.json`` (kind, params, features, calibration,
        state) plus the model's own files (LightGBM text model, skops files). Returns the folder."""
        self._check_fitted()
        path.mkdir(parents=True, exist_ok=True)
        a, b, threshold = self.calibration_
        document = {
            "format": FORMAT,
            "kind": self.kind,
            "defectops_version": __version__,
            "params": jsonable(self.get_params(deep=False)),
            "features": list(self.features_),
            "input_columns": self.input_columns(),
            "calibration": {"a": a, "b": b},
            "threshold": threshold,
            "n_train": int(self.n_train_),
            "positive_rate": float(self.positive_rate_),
            "bands": self.risk_bands().as_dict(),
            "typical": self.typical_ranges(),
            "state": self._state(),
        }
        self._save_files(path)
        (path / "model.json").write_text(json.dumps(document, indent=2) + "\n")
        return path

    def input_columns(self) -> list[str]:
        """The columns ``predict_proba`` reads from a DataFrame."""
        return [*self.features_, *((MESSAGE, PATHS) if self._uses_text else ())]
