"""Training and evaluation over time: tune inside the training part, fit, score the later test part.

This is the Python API behind ``defectops train`` and ``defectops evaluate`` (and what ``defectops run`` and
the registry call):

* :func:`fit_model`: tune (Optuna, time-ordered folds, wall-clock budget) and fit one model on a table;
* :func:`score_model`: every metric of a fitted model on a table;
* :func:`train`: a chronological split with a gap, :func:`fit_model` on the training part, :func:`score_model`
  on the test part, optionally a refit on all rows;
* :func:`evaluate`: the same over a chosen protocol (``time``, ``rolling``, ``kamei``, ``random``), metrics
  averaged over folds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from defectops.data import (
    DIFF,
    EFFORT,
    LABEL,
    MESSAGE,
    PATHS,
    TIME,
    Split,
    feature_columns,
    kamei_monthly,
    random_split,
    rolling_origin,
    time_split,
)
from defectops.errors import InputError
from defectops.training.metrics import Ranking, Report, evaluate_predictions, mean_reports
from defectops.training.models.base import JITModel
from defectops.training.models.zoo import DEFAULT_MODEL, make_model
from defectops.training.tuning import TuningResult, tune

SplitKind = Literal["time", "rolling", "kamei", "random"]
SPLIT_KINDS: tuple[str, ...] = ("time", "rolling", "kamei", "random")


@dataclass(frozen=True)
class FittedModel:
    """A fitted model and how its parameters were chosen."""

    model: JITModel
    tuning: TuningResult | None
    features: list[str]
    train_rows: int
    seconds: float


@dataclass(frozen=True)
class FoldResult:
    """One split: what was trained, and how it scored on the test rows."""

    split: Split
    report: Report
    params: dict[str, Any]
    tuning: TuningResult | None = None

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.split.name, **self.report.metrics()}
        document["counts"] = _counts(self.report)
        document["split"] = dict(self.split.info)
        if self.tuning is not None:
            document["tuning"] = self.tuning.as_dict()
        return document


@dataclass(frozen=True)
class EvaluationResult:
    """All folds of one protocol and their mean."""

    protocol: str
    kind: str
    ranking: str
    folds: list[FoldResult]
    summary: dict[str, float]
    skipped_folds: int = 0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        metrics = {k: v for k, v in self.summary.items() if k not in _COUNT_KEYS and k != "folds"}
        counts = {k: int(v) for k, v in self.summary.items() if k in _COUNT_KEYS}
        return {
            **metrics,
            "counts": counts,
            "split": self.protocol,
            "model": self.kind,
            "effort_ranking": self.ranking,
            "n_folds": len(self.folds),
            "skipped_folds": self.skipped_folds,
            "seconds": round(self.seconds, 3),
            "settings": self.settings,
            "folds": [f.as_dict() for f in self.folds],
        }


_COUNT_KEYS = ("n", "n_defective", "n_clean", "tp", "fp", "tn", "fn")


def _counts(report: Report) -> dict[str, int]:
    return {k: int(getattr(report, k)) for k in _COUNT_KEYS}


def _model_inputs(table: pd.DataFrame, kind: str, features: list[str]) -> pd.DataFrame:
    columns = [*features, TIME]
    if kind == "text":
        missing = [c for c in (MESSAGE, PATHS) if c not in table.columns]
        if missing:
            raise InputError(
                f"the text model needs the column(s) {', '.join(missing)} (map them with --mapping)"
            )
        columns += [MESSAGE, PATHS]
    if kind == "hybrid":
        missing = [c for c in (MESSAGE, DIFF) if c not in table.columns]
        if missing:
            raise InputError(
                f"the hybrid model needs the column(s) {', '.join(missing)}: the commit message and its "
                "changed lines (map them with --mapping)"
            )
        columns += [MESSAGE, DIFF]
    return table.loc[:, columns]


def fit_model(
    table: pd.DataFrame,
    *,
    kind: str = DEFAULT_MODEL,
    budget_seconds: float = 0.0,
    gap: timedelta = timedelta(0),
    seed: int = 0,
    n_folds: int = 3,
    params: Mapping[str, Any] | None = None,
) -> FittedModel:
    """Tune ``kind`` on time-ordered folds of ``table`` within ``budget_seconds`` (0: model defaults), then
    fit it on all of ``table``; Platt calibration and the threshold come from the model's own time-ordered
    folds. ``params`` are fixed (not tuned). Only ``table``'s rows are ever seen."""
    began = time.monotonic()
    features = feature_columns(table)
    if not features:
        raise InputError("the table has no feature columns")
    inputs = _model_inputs(table, kind, features)
    labels = table[LABEL].to_numpy(dtype=np.int64)
    times = table[TIME]
    fixed: dict[str, Any] = {
        "features": tuple(features),
        "cv_gap_days": gap / timedelta(days=1),
        **(params or {}),
    }
    tuning: TuningResult | None = None
    chosen: dict[str, Any] = dict(fixed)
    if budget_seconds > 0:
        try:
            tuning = tune(
                kind,
                inputs,
                labels,
                times,
                budget_seconds=budget_seconds,
                n_folds=n_folds,
                gap=gap,
                seed=seed,
                fixed_params=fixed,
            )
            chosen = dict(tuning.best_params)
        except InputError:
            tuning = None  # too few rows or one class in the folds: the defaults are the honest choice
    model = make_model(kind, **{**chosen, "random_state": seed})
    model.fit(inputs, labels, times=times.to_numpy())
    return FittedModel(model, tuning, features, len(table), time.monotonic() - began)


def score_model(
    model: JITModel,
    table: pd.DataFrame,
    *,
    ranking: Ranking = "density",
) -> Report:
    """Every metric of ``model`` on ``table`` (effort = ``churn``; threshold = the model's own)."""
    probability = model.predict_proba(table)[:, 1]
    return evaluate_predictions(
        table[LABEL].to_numpy(),
        probability,
        table[EFFORT].to_numpy(),
        threshold=model.threshold_,
        ranking=ranking,
    )


def _split(
    table: pd.DataFrame, protocol: str, *, gap: timedelta, test_fraction: float, n_folds: int, seed: int
) -> list[Split]:
    times = table[TIME]
    if protocol == "time":
        return [time_split(times, test_fraction=test_fraction, gap=gap)]
    if protocol == "rolling":
        return rolling_origin(times, n_folds=n_folds, test_fraction=test_fraction, gap=gap, min_train_rows=20)
    if protocol == "kamei":
        return kamei_monthly(times)
    if protocol == "random":
        return [random_split(len(table), test_fraction=test_fraction, seed=seed)]
    raise InputError(f"unknown split {protocol!r}: choose one of {', '.join(SPLIT_KINDS)}")


def _usable(table: pd.DataFrame, split: Split) -> bool:
    labels = table[LABEL].to_numpy()
    return len(np.unique(labels[split.train])) == 2 and len(np.unique(labels[split.test])) == 2


def run_fold(
    table: pd.DataFrame,
    split: Split,
    *,
    kind: str = DEFAULT_MODEL,
    budget_seconds: float = 0.0,
    gap: timedelta = timedelta(0),
    seed: int = 0,
    ranking: Ranking = "density",
    params: Mapping[str, Any] | None = None,
) -> tuple[FoldResult, FittedModel]:
    """Fit on ``split.train`` (tuning inside it), score on ``split.test``."""
    train_part = table.iloc[split.train]
    fitted = fit_model(
        train_part, kind=kind, budget_seconds=budget_seconds, gap=gap, seed=seed, params=params
    )
    report = score_model(fitted.model, table.iloc[split.test], ranking=ranking)
    chosen = fitted.model.get_params(deep=False)
    return FoldResult(split, report, chosen, fitted.tuning), fitted


def evaluate(
    table: pd.DataFrame,
    *,
    protocol: str = "time",
    kind: str = DEFAULT_MODEL,
    budget_seconds: float = 0.0,
    gap: timedelta = timedelta(0),
    test_fraction: float = 0.2,
    n_folds: int = 3,
    seed: int = 0,
    ranking: Ranking = "density",
    params: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Evaluate ``kind`` under ``protocol``: per fold, tune within its training part (``budget_seconds`` is
    shared evenly by the folds), fit, and score its test part; folds whose train or test part lacks a class
    are skipped (counted in ``skipped_folds``). ``random`` ignores time and must be asked for by name."""
    began = time.monotonic()
    splits = _split(table, protocol, gap=gap, test_fraction=test_fraction, n_folds=n_folds, seed=seed)
    usable = [s for s in splits if _usable(table, s)]
    if not usable:
        raise InputError(f"no {protocol} fold has both classes in its training and test parts")
    per_fold = budget_seconds / len(usable)
    folds = [
        run_fold(
            table, s, kind=kind, budget_seconds=per_fold, gap=gap, seed=seed, ranking=ranking, params=params
        )[0]
        for s in usable
    ]
    return EvaluationResult(
        protocol=protocol,
        kind=kind,
        ranking=ranking,
        folds=folds,
        summary=mean_reports([f.report for f in folds]),
        skipped_folds=len(splits) - len(usable),
        seconds=time.monotonic() - began,
        settings={
            "gap_days": gap / timedelta(days=1),
            "test_fraction": test_fraction,
            "n_folds": n_folds,
            "budget_seconds": budget_seconds,
            "seed": seed,
        },
    )


@dataclass(frozen=True)
class TrainResult:
    """``defectops train``: the model, its tuning, and its scores on the held-out later rows."""

    fitted: FittedModel
    fold: FoldResult
    refitted: bool
    #: What the default model chose inside the training part (``training.choice.train``): ``model_choice``
    #: and, for a table of the Kamei metrics, ``feature_set``.
    choices: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        model = self.fitted.model
        return {
            **self.fold.report.metrics(),
            "counts": _counts(self.fold.report),
            "model": model.kind,
            "params": {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in model.get_params(deep=False).items()
            },
            "features": list(model.features_),
            "threshold": model.threshold_,
            "effort_ranking": self.fold.report.ranking,
            "split": dict(self.fold.split.info),
            "tuning": None if self.fold.tuning is None else self.fold.tuning.as_dict(),
            "refitted_on_all_rows": self.refitted,
            "train_seconds": round(self.fitted.seconds, 3),
            **self.choices,
        }


def train(
    table: pd.DataFrame,
    *,
    kind: str = DEFAULT_MODEL,
    budget_seconds: float = 60.0,
    gap: timedelta = timedelta(0),
    test_fraction: float = 0.2,
    seed: int = 0,
    ranking: Ranking = "density",
    refit: bool = False,
    params: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Chronological split with ``gap``; tune and fit on the earlier part; score on the later part. With
    ``refit``, the tuned parameters are then refitted on every row (the returned model), and the test scores
    describe the model before the refit."""
    split = time_split(table[TIME], test_fraction=test_fraction, gap=gap)
    if not _usable(table, split):
        raise InputError("the time split leaves one class out of the training or test part")
    fold, fitted = run_fold(
        table,
        split,
        kind=kind,
        budget_seconds=budget_seconds,
        gap=gap,
        seed=seed,
        ranking=ranking,
        params=params,
    )
    if refit:
        chosen = fitted.model.get_params(deep=False)
        began = time.monotonic()
        model = make_model(kind, **chosen)
        model.fit(
            _model_inputs(table, kind, fitted.features),
            table[LABEL].to_numpy(dtype=np.int64),
            times=table[TIME].to_numpy(),
        )
        fitted = FittedModel(
            model, fitted.tuning, fitted.features, len(table), fitted.seconds + time.monotonic() - began
        )
    return TrainResult(fitted, fold, refit)
