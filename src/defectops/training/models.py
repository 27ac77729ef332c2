"""The model zoo: classifiers of defect-inducing changes that follow the scikit-learn estimator contract.

Every model here is a :class:`JITModel`: ``fit(X, y)``, ``predict_proba(X)``, ``predict(X)``,
``get_params()``/``set_params()``, picklable, plus ``explain(X, top_k)``, ``save(path)`` and
:func:`load_model`.
``X`` is a DataFrame holding the feature columns (a training table from :mod:`defectops.data.schemas` works
as is; its ``time`` column, if present, is used for recency weights and time-ordered calibration folds and is
never a feature).

Why one shape for all models: every model produces a raw score that is an exact sum of per-feature terms
(``raw = bias + sum(terms)``), and probabilities are ``sigmoid(a * raw + b)`` (Platt scaling, fitted on
out-of-fold predictions of time-ordered folds inside the training data). Because that map is affine in
log-odds, the explanation of a prediction is exact in calibrated log-odds:
``logit(p) = (a*bias + b) + sum(a*term)``. The terms are

* logistic regression, online and text models: ``coef * standardised value`` (exact for linear models);
* LightGBM (the default): ``Booster.predict(pred_contrib=True)`` (TreeSHAP, exact for trees), read from
  precomputed tables when the booster allows them (the same terms, faster; see
  :mod:`defectops.training.treeshap`);
* random forest: the decision-path decomposition of Saabas (exact: the forest vote equals the root value
  plus the sum of the per-split changes along each tree's path, averaged over trees).

Class imbalance: ``class_weight="balanced"`` weights each class to half of the total weight; calibration then
maps the balanced scores back to real probabilities. Recency: ``half_life_days`` down-weights old changes
(a change ``h`` days older than the newest training change weighs ``0.5 ** (h / half_life_days)``), because
what makes a change risky drifts (McIntosh & Kamei, TSE 2018).

Models:

* :class:`LightGBMJIT` (``lightgbm``, the default);
* :class:`LogisticJIT` (``logreg``): Kamei-style log1p + standardisation + class weights;
* :class:`ForestJIT` (``rf``): random forest (or extremely randomised trees);
* :class:`OnlineJIT` (``online``): SGD log-loss with ``partial_fit`` for newly labelled changes; Platt
  scaling from its first fit, with the offset following the running class counts;
* :class:`TextJIT` (``text``): JITLine-style, adding TF-IDF of the commit message and the changed paths.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from defectops import __version__
from defectops.data import EFFORT, FEATURES, LABEL, MESSAGE, PATHS, TIME
from defectops.errors import InputError, ModelError
from defectops.training.treeshap import TreeShapTables

FloatArray = npt.NDArray[np.float64]
ModelKind = Literal["lightgbm", "logreg", "rf", "online", "text"]
MODEL_KINDS: tuple[str, ...] = ("lightgbm", "logreg", "rf", "online", "text")
DEFAULT_MODEL: ModelKind = "lightgbm"

_FORMAT = 1
_NOT_FEATURES = frozenset({LABEL, TIME, EFFORT, MESSAGE, PATHS, "commit", "sha", "repo"})
#: Types a saved skops file may contain; anything else is refused on load.
_SKOPS_ALLOWED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "builtins.", "collections.")


@dataclass(frozen=True)
class Contribution:
    """One term of an explanation: a feature, its value for this change, and how much it moved the risk
    (in calibrated log-odds; positive raises the risk)."""

    feature: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Why one change got its probability: ``logit(probability) = base + sum of all contributions``; the
    ``top_k`` largest by magnitude are listed (``rest`` sums the others)."""

    probability: float
    base: float
    contributions: tuple[Contribution, ...]
    rest: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "probability": self.probability,
            "base": self.base,
            "rest": self.rest,
            "contributions": [
                {"feature": c.feature, "value": c.value, "contribution": c.contribution}
                for c in self.contributions
            ],
        }


@dataclass
class _Inputs:
    """Model inputs: numeric features in ``features_`` order, and (text model) the two text columns."""

    numeric: FloatArray
    message: list[str] | None = None
    paths: list[str] | None = None

    def __len__(self) -> int:
        return int(self.numeric.shape[0])

    def take(self, rows: npt.NDArray[np.int64]) -> _Inputs:
        return _Inputs(
            self.numeric[rows],
            None if self.message is None else [self.message[i] for i in rows],
            None if self.paths is None else [self.paths[i] for i in rows],
        )


def _sigmoid(x: FloatArray) -> FloatArray:
    result: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * x))
    return result


def _signed_log1p(x: FloatArray) -> FloatArray:
    result: FloatArray = np.sign(x) * np.log1p(np.abs(x))
    return result


def recency_weights(
    times: pd.Series | pd.DatetimeIndex | None, half_life_days: float | None
) -> FloatArray | None:
    """``0.5 ** (age / half_life)`` with age measured back from the newest time; None when not asked for."""
    if half_life_days is None or times is None:
        return None
    if half_life_days <= 0:
        raise InputError(f"half_life_days must be positive, got {half_life_days}")
    stamps = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).as_unit("ns").asi8.astype(np.float64)
    age_days = (stamps.max() - stamps) / (86_400 * 1e9)
    weights: FloatArray = np.power(0.5, age_days / half_life_days)
    return weights


def balanced_weights(y: npt.NDArray[np.int64], base: FloatArray | None = None) -> FloatArray:
    """Per-row weights giving each class half of the total weight (after the ``base`` weights)."""
    w = np.ones(len(y), dtype=np.float64) if base is None else base.astype(np.float64)
    total = w.sum()
    out = w.copy()
    for cls in (0, 1):
        mask = y == cls
        mass = w[mask].sum()
        if mass > 0:
            out[mask] = w[mask] * total / (2.0 * mass)
    return out


def _times_of(X: object, times: object | None) -> pd.Series | None:
    if times is not None:
        return pd.Series(pd.to_datetime(np.asarray(times), utc=True))
    if isinstance(X, pd.DataFrame) and TIME in X.columns:
        return pd.Series(pd.to_datetime(X[TIME], utc=True).to_numpy())
    return None


class JITModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Common machinery: input checks, weights, Platt calibration on time-ordered folds, threshold,
    explanations, persistence. Subclasses implement ``_fit_core``, ``_raw`` and ``_terms``."""

    kind: ClassVar[str] = ""
    #: The raw score at which a balanced model is undecided (0 for log-odds, 0.5 for a forest vote).
    _neutral_raw: ClassVar[float] = 0.0
    _uses_text: ClassVar[bool] = False

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
                if str(c) not in _NOT_FEATURES and pd.api.types.is_numeric_dtype(X[c])
            ]
            if numeric:
                return numeric
            raise InputError("X has no numeric feature columns")
        array = np.asarray(X)
        if array.ndim != 2:
            raise InputError("X must be a 2-D table")
        return [f"f{i}" for i in range(array.shape[1])]

    def _inputs(self, X: object, features: Sequence[str] | None = None) -> _Inputs:
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
        return _Inputs(numeric, message, paths)

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

    def _fit_core(self, inputs: _Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        raise NotImplementedError

    def _raw(self, inputs: _Inputs) -> FloatArray:
        raise NotImplementedError

    def _terms(self, inputs: _Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
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
        stamps = _times_of(X, times)
        if stamps is not None and len(stamps) != len(labels):
            raise InputError("times and y differ in length")
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(self.features_)
        self.calibration_ = self._calibrate(inputs, labels, sample_weight, stamps)
        self._fit_core(inputs, labels, self._weights(labels, sample_weight, stamps))
        self.n_train_ = len(labels)
        self.positive_rate_ = float(labels.mean())
        return self

    def _calibrate(
        self,
        inputs: _Inputs,
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
        threshold = _best_f1_threshold(truth, _sigmoid(a * raw + b))
        return a, b, threshold

    def _fallback_calibration(self, positive_rate: float) -> tuple[float, float, float]:
        """Without folds: undo the class balancing by prior correction (``b = logit(positive rate)``)."""
        rate = min(max(positive_rate, 1e-6), 1 - 1e-6)
        shift = math.log(rate / (1 - rate)) if self.class_weight == "balanced" else 0.0
        a = 1.0 if self._neutral_raw == 0.0 else 4.0
        b = shift - a * self._neutral_raw
        threshold = float(_sigmoid(np.array([a * self._neutral_raw + b]))[0])
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
        p = _sigmoid(self.decision_function(X))
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
                    probability=float(_sigmoid(np.array([logit]))[0]),
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
            "format": _FORMAT,
            "kind": self.kind,
            "defectops_version": __version__,
            "params": _jsonable(self.get_params(deep=False)),
            "features": list(self.features_),
            "input_columns": self.input_columns(),
            "calibration": {"a": a, "b": b},
            "threshold": threshold,
            "n_train": int(self.n_train_),
            "positive_rate": float(self.positive_rate_),
            "state": self._state(),
        }
        self._save_files(path)
        (path / "model.json").write_text(json.dumps(document, indent=2) + "\n")
        return path

    def input_columns(self) -> list[str]:
        """The columns ``predict_proba`` reads from a DataFrame."""
        return [*self.features_, *((MESSAGE, PATHS) if self._uses_text else ())]


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def platt_scaling(raw: FloatArray, y: npt.NDArray[np.int64], iterations: int = 100) -> tuple[float, float]:
    """Fit ``P(y=1) = sigmoid(a * raw + b)`` by Newton's method on Platt's (1999) smoothed targets
    ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)``, which keep (a, b) finite even when the scores separate
    the classes perfectly."""
    n_pos = float(np.sum(y == 1))
    n_neg = float(len(y) - n_pos)
    target = np.where(y == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    center, spread = float(np.mean(raw)), float(np.std(raw)) or 1.0
    x = (raw - center) / spread
    a, b = 0.0, math.log((n_pos + 1.0) / (n_neg + 1.0))

    def loss(a_: float, b_: float) -> float:
        z = a_ * x + b_
        return float(np.sum(np.logaddexp(0.0, z) - target * z))

    current = loss(a, b)
    for _ in range(iterations):
        p = _sigmoid(a * x + b)
        g = p - target
        h = np.maximum(p * (1.0 - p), 1e-12)
        grad = np.array([np.sum(g * x), np.sum(g)])
        hess = np.array([[np.sum(h * x * x), np.sum(h * x)], [np.sum(h * x), np.sum(h)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6:
            candidate = loss(a - scale * float(step[0]), b - scale * float(step[1]))
            if candidate <= current:
                break
            scale /= 2.0
        else:
            break  # no step decreases the loss: converged as far as floating point allows
        a, b = a - scale * float(step[0]), b - scale * float(step[1])
        improvement = current - candidate
        current = candidate
        if improvement < 1e-10 * max(1.0, abs(current)):
            break
    # back to the unstandardised score: a*(raw-center)/spread + b
    return a / spread, b - a * center / spread


def _best_f1_threshold(y: npt.NDArray[np.int64], p: FloatArray) -> float:
    """The probability threshold maximising F1 (predict positive when ``p >= t``), kept inside (0, 1)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    f1 = 2 * tp / (k + ys.sum())
    last = np.r_[ps[1:] != ps[:-1], True]
    f1 = np.where(last, f1, -1.0)
    best = int(np.argmax(f1))
    return float(min(max(ps[best], 1e-6), 1 - 1e-6))


# ---------------------------------------------------------------------------------------------- LightGBM


class LightGBMJIT(JITModel):
    """Gradient-boosted trees (LightGBM), the default. Keeps a raw :class:`lightgbm.Booster` so that scoring
    one change is a single ``Booster.predict`` on a NumPy row (no wrapper overhead).

    Defaults: small extremely-randomised trees (8 leaves, 200 rounds, leaves of at least 1% of the rows
    within [5, 50]) that work from a 2-month window of a small project to tens of thousands of changes, and
    a one-year recency half-life (what makes a change risky drifts; McIntosh & Kamei, TSE 2018)."""

    kind = "lightgbm"
    #: TreeSHAP tables of ``booster_`` (built on first use; never pickled), with the booster they belong to.
    _treeshap: tuple[Any, TreeShapTables | None]

    def __init__(
        self,
        features: Sequence[str] | None = None,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 8,
        min_child_samples: int | None = None,
        colsample_bytree: float = 0.8,
        subsample: float = 0.8,
        reg_lambda: float = 1.0,
        extra_trees: bool = True,
        max_bin: int = 255,
        class_weight: Literal["balanced"] | None = "balanced",
        half_life_days: float | None = 365.0,
        cv_folds: int = 3,
        cv_gap_days: float = 0.0,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.reg_lambda = reg_lambda
        self.extra_trees = extra_trees
        self.max_bin = max_bin
        self.class_weight = class_weight
        self.half_life_days = half_life_days
        self.cv_folds = cv_folds
        self.cv_gap_days = cv_gap_days
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _min_leaf(self, n_rows: int) -> int:
        """``min_child_samples``, or when None a size-aware default: 1% of the rows, within [5, 50] (a
        2-month window of a small project has ~100 changes; leaves of 50 would leave almost no splits)."""
        if self.min_child_samples is not None:
            return int(self.min_child_samples)
        return int(min(max(n_rows // 100, 5), 50))

    def _lgb_params(self, n_rows: int) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self._min_leaf(n_rows),
            "feature_fraction": self.colsample_bytree,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1.0 else 0,
            "lambda_l2": self.reg_lambda,
            "extra_trees": self.extra_trees,
            "max_bin": self.max_bin,
            "num_threads": self.n_jobs,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def _fit_core(self, inputs: _Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        import lightgbm as lgb

        data = lgb.Dataset(
            inputs.numeric,
            label=y,
            weight=w,
            feature_name=[_lgb_name(n) for n in self.features_],
            params={"max_bin": self.max_bin, "verbosity": -1},
            free_raw_data=True,
        )
        self.booster_ = lgb.train(self._lgb_params(len(y)), data, num_boost_round=self.n_estimators)
        self.__dict__.pop("_treeshap", None)

    def _raw(self, inputs: _Inputs) -> FloatArray:
        result: FloatArray = np.asarray(
            self.booster_.predict(inputs.numeric, raw_score=True, num_threads=1), dtype=np.float64
        )
        return result

    def predict_one(self, row: Sequence[float]) -> float:
        """Calibrated probability for one change given as values in :attr:`features_` order (the fast path
        for serving: one ``Booster.predict`` call on a 1 x n NumPy array)."""
        self._check_fitted()
        raw = self.booster_.predict(
            np.asarray(row, dtype=np.float64).reshape(1, -1), raw_score=True, num_threads=1
        )
        a, b, _ = self.calibration_
        return float(1.0 / (1.0 + math.exp(-(a * float(raw[0]) + b))))

    def _shap_tables(self) -> TreeShapTables | None:
        """The TreeSHAP tables of the current booster, built on first use (None: the booster has none)."""
        cached = self.__dict__.get("_treeshap")
        if cached is None or cached[0] is not self.booster_:
            cached = (self.booster_, TreeShapTables.from_booster(self.booster_, len(self.features_)))
            self._treeshap = cached
        tables: TreeShapTables | None = cached[1]
        return tables

    def _terms(self, inputs: _Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        tables = self._shap_tables()
        if tables is not None:
            contrib = tables.contributions(inputs.numeric)
        else:
            contrib = np.asarray(self.booster_.predict(inputs.numeric, pred_contrib=True, num_threads=1))
        out = []
        for i in range(len(inputs)):
            terms = [
                (name, float(inputs.numeric[i, j]), float(contrib[i, j]))
                for j, name in enumerate(self.features_)
            ]
            out.append((float(contrib[i, -1]), terms))
        return out

    def _save_files(self, folder: Path) -> None:
        self.booster_.save_model(str(folder / "booster.txt"))

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(folder / "booster.txt"))
        self.__dict__.pop("_treeshap", None)

    def __getstate__(self) -> dict[str, Any]:
        # The booster travels as LightGBM's own text model, so pickles and skops files hold only plain data.
        state: dict[str, Any] = dict(super().__getstate__())
        state.pop("_treeshap", None)  # derived from the booster: rebuilt on first use
        booster = state.pop("booster_", None)
        if booster is not None:
            state["booster_text_"] = booster.model_to_string()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state.pop("_treeshap", None)
        text = state.pop("booster_text_", None)
        super().__setstate__(state)
        if text is not None:
            import lightgbm as lgb

            self.booster_ = lgb.Booster(model_str=text)


def _lgb_name(name: str) -> str:
    """LightGBM refuses some characters in feature names; the mapping is only for its own files."""
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name) or "f"


# ---------------------------------------------------------------------------------------------- linear


class _Standardiser:
    """log1p (signed) then standardise with training mean and standard deviation (constant columns: 1)."""

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
        self, inputs: _Inputs, coef: FloatArray, intercept: float, features: Sequence[str]
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

    def _fit_core(self, inputs: _Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        from sklearn.linear_model import LogisticRegression

        numeric = np.nan_to_num(inputs.numeric)
        self.scaler_ = _Standardiser.fit(numeric)
        lr = LogisticRegression(C=self.C, max_iter=5000, random_state=self.random_state)
        lr.fit(self.scaler_.transform(numeric), y, sample_weight=w)
        self.coef_ = np.asarray(lr.coef_[0], dtype=np.float64)
        self.intercept_ = float(lr.intercept_[0])

    def _raw(self, inputs: _Inputs) -> FloatArray:
        result: FloatArray = (
            self.scaler_.transform(np.nan_to_num(inputs.numeric)) @ self.coef_ + self.intercept_
        )
        return result

    def _terms(self, inputs: _Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        return self.scaler_.linear_terms(inputs, self.coef_, self.intercept_, self.features_)

    def _state(self) -> dict[str, Any]:
        return {**self.scaler_.state(), "coef": self.coef_.tolist(), "intercept": self.intercept_}

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        self.scaler_ = _Standardiser.from_state(state)
        self.coef_ = np.asarray(state["coef"], dtype=np.float64)
        self.intercept_ = float(state["intercept"])


# ---------------------------------------------------------------------------------------------- forest


class ForestJIT(JITModel):
    """Random forest (``extra_trees=True``: extremely randomised trees) on the raw features. The raw score is
    the forest vote; explanations are Saabas decision-path terms (exact for the vote)."""

    kind = "rf"
    _neutral_raw = 0.5

    def __init__(
        self,
        features: Sequence[str] | None = None,
        n_estimators: int = 300,
        min_samples_leaf: int = 5,
        max_features: float = 0.5,
        max_depth: int | None = None,
        extra_trees: bool = False,
        class_weight: Literal["balanced"] | None = "balanced",
        half_life_days: float | None = None,
        cv_folds: int = 3,
        cv_gap_days: float = 0.0,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_depth = max_depth
        self.extra_trees = extra_trees
        self.class_weight = class_weight
        self.half_life_days = half_life_days
        self.cv_folds = cv_folds
        self.cv_gap_days = cv_gap_days
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit_core(self, inputs: _Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        cls = ExtraTreesClassifier if self.extra_trees else RandomForestClassifier
        self.forest_ = cls(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_depth=self.max_depth,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        ).fit(np.nan_to_num(inputs.numeric), y, sample_weight=w)

    def _raw(self, inputs: _Inputs) -> FloatArray:
        result: FloatArray = np.asarray(
            self.forest_.predict_proba(np.nan_to_num(inputs.numeric))[:, 1], dtype=np.float64
        )
        return result

    def _terms(self, inputs: _Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        from scipy import sparse

        X = np.nan_to_num(inputs.numeric).astype(np.float32)
        n_features = len(self.features_)
        total = np.zeros((len(inputs), n_features))
        bias = 0.0
        for tree in self.forest_.estimators_:
            t = tree.tree_
            value = t.value[:, 0, :]
            value = value[:, 1] / np.maximum(value.sum(axis=1), 1e-300)
            parent = np.full(t.node_count, -1)
            for node in range(t.node_count):
                for child in (t.children_left[node], t.children_right[node]):
                    if child >= 0:
                        parent[child] = node
            nodes = np.arange(t.node_count)
            has_parent = parent >= 0
            step = sparse.csr_matrix(
                (
                    value[nodes[has_parent]] - value[parent[has_parent]],
                    (nodes[has_parent], t.feature[parent[has_parent]]),
                ),
                shape=(t.node_count, n_features),
            )
            path = tree.decision_path(X)
            total += np.asarray((path @ step).todense())
            bias += float(value[0])
        n_trees = len(self.forest_.estimators_)
        total /= n_trees
        return [
            (
                bias / n_trees,
                [(n, float(inputs.numeric[i, j]), float(total[i, j])) for j, n in enumerate(self.features_)],
            )
            for i in range(len(inputs))
        ]

    def _save_files(self, folder: Path) -> None:
        _skops_dump(self.forest_, folder / "forest.skops")

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        self.forest_ = _skops_load(folder / "forest.skops")


# ---------------------------------------------------------------------------------------------- online


class OnlineJIT(JITModel):
    """Logistic regression learned by SGD (log-loss) that keeps learning from newly labelled changes with
    :meth:`partial_fit`, no full retrain. Inputs are log1p-standardised with the statistics of the first
    fit (frozen, so earlier weights keep their meaning). Probabilities: Platt scaling from the first fit's
    time-ordered folds, whose offset then follows the running class counts (prior shift: ``b`` moves by the
    change of ``logit(positive share)``) with every ``partial_fit``."""

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

    def _fit_core(self, inputs: _Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
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

    def _raw(self, inputs: _Inputs) -> FloatArray:
        result: FloatArray = np.asarray(
            self.sgd_.decision_function(self.scaler_.transform(np.nan_to_num(inputs.numeric))),
            dtype=np.float64,
        )
        return result

    def _terms(self, inputs: _Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
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
        _skops_dump(self.sgd_, folder / "sgd.skops")

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        self.scaler_ = _Standardiser.from_state(state)
        self.class_counts_ = np.asarray(state["class_counts"], dtype=np.float64)
        self.fit_counts_ = np.asarray(state["fit_counts"], dtype=np.float64)
        a, b, threshold = (float(v) for v in state["fit_calibration"])
        self.fit_calibration_ = (a, b, threshold)
        self.sgd_ = _skops_load(folder / "sgd.skops")


# ---------------------------------------------------------------------------------------------- text


def _path_tokens(text: str) -> list[str]:
    """Tokens of changed paths (one per line): every directory, file stem and extension, lower-cased."""
    tokens: list[str] = []
    for path in (line.strip() for line in text.splitlines()):
        if not path:
            continue
        parts = [p for p in path.lower().replace("\\", "/").split("/") if p]
        for i, part in enumerate(parts):
            if i < len(parts) - 1:
                tokens.append(part + "/")
            else:
                stem, dot, ext = part.rpartition(".")
                tokens.append(stem if dot else part)
                if dot:
                    tokens.append("." + ext)
    return tokens


class TextJIT(JITModel):
    """JITLine-style: the change metrics (log1p, standardised) plus TF-IDF of the commit message words and
    of the changed paths' directories, file names and extensions, in one L2-regularised logistic regression
    (linear, so every term of an explanation is ``coef * value``; text terms are named ``msg:<word>`` and
    ``path:<token>``)."""

    kind = "text"
    _uses_text = True

    def __init__(
        self,
        features: Sequence[str] | None = None,
        C: float = 1.0,
        max_tokens: int = 5000,
        min_df: int = 2,
        class_weight: Literal["balanced"] | None = "balanced",
        half_life_days: float | None = None,
        cv_folds: int = 3,
        cv_gap_days: float = 0.0,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.C = C
        self.max_tokens = max_tokens
        self.min_df = min_df
        self.class_weight = class_weight
        self.half_life_days = half_life_days
        self.cv_folds = cv_folds
        self.cv_gap_days = cv_gap_days
        self.random_state = random_state

    def _design(self, inputs: _Inputs) -> Any:
        from scipy import sparse

        numeric = sparse.csr_matrix(self.scaler_.transform(np.nan_to_num(inputs.numeric)))
        msg = self.message_vectorizer_.transform(inputs.message or [])
        paths = self.path_vectorizer_.transform(inputs.paths or [])
        return sparse.hstack([numeric, msg, paths], format="csr")

    def _fit_core(self, inputs: _Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        min_df = self.min_df if len(y) >= 10 * self.min_df else 1
        self.scaler_ = _Standardiser.fit(np.nan_to_num(inputs.numeric))
        self.message_vectorizer_ = TfidfVectorizer(
            lowercase=True,
            token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9_]+\b",  # noqa: S106 - a regex, not a secret
            max_features=self.max_tokens,
            min_df=min_df,
            sublinear_tf=True,
            dtype=np.float64,
        ).fit(inputs.message or [])
        self.path_vectorizer_ = TfidfVectorizer(
            tokenizer=_path_tokens,
            token_pattern=None,
            lowercase=False,
            max_features=self.max_tokens,
            min_df=min_df,
            sublinear_tf=True,
            dtype=np.float64,
        ).fit(inputs.paths or [])
        self.text_names_ = [
            *(f"msg:{t}" for t in self.message_vectorizer_.get_feature_names_out()),
            *(f"path:{t}" for t in self.path_vectorizer_.get_feature_names_out()),
        ]
        lr = LogisticRegression(C=self.C, max_iter=5000, solver="liblinear", random_state=self.random_state)
        lr.fit(self._design(inputs), y, sample_weight=w)
        self.coef_ = np.asarray(lr.coef_[0], dtype=np.float64)
        self.intercept_ = float(lr.intercept_[0])

    def _raw(self, inputs: _Inputs) -> FloatArray:
        result: FloatArray = np.asarray(self._design(inputs) @ self.coef_, dtype=np.float64) + self.intercept_
        return result

    def _terms(self, inputs: _Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        design = self._design(inputs)
        names = [*self.features_, *self.text_names_]
        k = len(self.features_)
        out = []
        for i in range(len(inputs)):
            row = design.getrow(i)
            terms = []
            for j, value in zip(row.indices, row.data, strict=True):
                raw_value = float(inputs.numeric[i, j]) if j < k else float(value)
                terms.append((names[j], raw_value, float(value * self.coef_[j])))
            out.append((self.intercept_, terms))
        return out

    def _state(self) -> dict[str, Any]:
        return self.scaler_.state()

    def _save_files(self, folder: Path) -> None:
        _skops_dump(
            {
                "message": self.message_vectorizer_.vocabulary_,
                "message_idf": self.message_vectorizer_.idf_,
                "paths": self.path_vectorizer_.vocabulary_,
                "paths_idf": self.path_vectorizer_.idf_,
                "coef": self.coef_,
                "intercept": self.intercept_,
            },
            folder / "text.skops",
        )

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.scaler_ = _Standardiser.from_state(state)
        parts = _skops_load(folder / "text.skops")
        self.message_vectorizer_ = TfidfVectorizer(
            lowercase=True,
            token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9_]+\b",  # noqa: S106 - a regex, not a secret
            sublinear_tf=True,
            vocabulary=parts["message"],
            dtype=np.float64,
        )
        self.message_vectorizer_.idf_ = parts["message_idf"]
        self.path_vectorizer_ = TfidfVectorizer(
            tokenizer=_path_tokens,
            token_pattern=None,
            lowercase=False,
            sublinear_tf=True,
            vocabulary=parts["paths"],
            dtype=np.float64,
        )
        self.path_vectorizer_.idf_ = parts["paths_idf"]
        self.text_names_ = [
            *(f"msg:{t}" for t in self.message_vectorizer_.get_feature_names_out()),
            *(f"path:{t}" for t in self.path_vectorizer_.get_feature_names_out()),
        ]
        self.coef_ = np.asarray(parts["coef"], dtype=np.float64)
        self.intercept_ = float(parts["intercept"])


# ---------------------------------------------------------------------------------------------- registry


MODEL_CLASSES: dict[str, type[JITModel]] = {
    "lightgbm": LightGBMJIT,
    "logreg": LogisticJIT,
    "rf": ForestJIT,
    "online": OnlineJIT,
    "text": TextJIT,
}


def make_model(kind: str = DEFAULT_MODEL, **params: Any) -> JITModel:
    """A fresh, unfitted model of ``kind`` (one of :data:`MODEL_KINDS`) with ``params``."""
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
    if document.get("format") != _FORMAT:
        raise ModelError(f"{path}: model format {document.get('format')!r} is not supported")
    kind = str(document.get("kind"))
    if kind not in MODEL_CLASSES:
        raise ModelError(f"{path}: unknown model kind {kind!r}")
    params = dict(document["params"])
    if params.get("features") is not None:
        params["features"] = tuple(params["features"])
    model = MODEL_CLASSES[kind](**params)
    model.features_ = list(document["features"])
    model.classes_ = np.array([0, 1])
    model.n_features_in_ = len(model.features_)
    model.n_train_ = int(document.get("n_train", 0))
    model.positive_rate_ = float(document.get("positive_rate", float("nan")))
    calibration = document["calibration"]
    model.calibration_ = (float(calibration["a"]), float(calibration["b"]), float(document["threshold"]))
    try:
        model._restore(document.get("state", {}), path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: the model files do not load ({type(exc).__name__}: {exc})") from None
    return model


def _skops_dump(obj: object, path: Path) -> None:
    import skops.io as sio

    sio.dump(obj, path)


def _skops_load(path: Path) -> Any:
    import skops.io as sio

    if not path.is_file():
        raise ModelError(f"{path}: missing model file")
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(_SKOPS_ALLOWED_PREFIXES)]
    if refused:
        raise ModelError(f"{path}: refusing to load unexpected types {', '.join(refused)}")
    return sio.load(path, trusted=untrusted)
