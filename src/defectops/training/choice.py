"""The default model's automatic, time-aware choices on metrics-only data (#20): which model family and
recency weighting, and (for external tables) whether relative-churn ratios join the Kamei metrics.

Every choice is made on time-ordered validation folds *inside the training part* it is given (the caller
passes the rows before the held-out window): the 3 rolling-origin folds of the tuner
(:func:`defectops.training.tuning.validation_folds`, each 20% of the rows, the gap respected). The default
(LightGBM, one-year recency half-life) is kept unless a candidate beats it there by ``min_gain``.

The candidates (docs/benchmarks.md, "#20 better default", has the measurements that chose this list):

* the log-linear and boosted models blended in log-odds, ``raw = (1 - w) * raw_lightgbm + w * raw_logreg``,
  with ``w`` in :data:`LINEAR_WEIGHTS` (``w = 0`` is LightGBM, ``w = 1`` the Kamei-style logistic regression,
  else :class:`~defectops.training.models.BlendJIT`);
* the recency half-life of the sample weights (``0.5 ** (age / half_life)``) in :data:`HALF_LIVES`
  (None: no decay), shared by both parts;
* for external tables (:func:`train`): :data:`RELATIVE_CHURN`, ratios of the Kamei metrics, as a larger
  feature set chosen by :func:`defectops.training.selection.choose_features`.

Measured and dropped (they lost on the validation folds of every data set): monotone constraints on the size
and diffusion metrics, larger leaves, stronger L1/L2 and fewer leaves in LightGBM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.data import FEATURES, LABEL, TIME, feature_columns, time_split
from defectops.errors import InputError
from defectops.training.evaluate import TrainResult
from defectops.training.evaluate import train as train_model
from defectops.training.metrics import Ranking, roc_auc
from defectops.training.models import DEFAULT_MODEL, LightGBMJIT, LogisticJIT
from defectops.training.models.base import JITModel
from defectops.training.selection import FeatureSets, choose_features, with_features
from defectops.training.tuning import validation_folds

#: Weights of the logistic regression in the log-odds blend (0: LightGBM alone, 1: logistic regression).
LINEAR_WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Recency half-lives in days (None: every training change weighs the same); the first is the default's.
HALF_LIVES: tuple[float | None, ...] = (365.0, None, 730.0, 180.0)

#: Relative-churn ratios of the Kamei metrics: (name, numerator, denominator); value = num / max(den, 1).
RELATIVE_CHURN_RATIOS: tuple[tuple[str, str, str], ...] = (
    ("la_per_lt", "la", "lt"),
    ("ld_per_lt", "ld", "lt"),
    ("lt_per_nf", "lt", "nf"),
    ("nuc_per_nf", "nuc", "nf"),
    ("la_per_nf", "la", "nf"),
    ("ld_per_nf", "ld", "nf"),
    ("churn_per_nf", "churn", "nf"),
    ("ndev_per_nf", "ndev", "nf"),
    ("age_per_nf", "age", "nf"),
    ("la_per_ld", "la", "ld"),
)
#: The kinds that make the default's choices: LightGBM, and the blend it may have chosen before (so that
#: retraining a chosen blend's kind chooses again rather than keeping the old weight).
CHOOSING_KINDS: tuple[str, ...] = (DEFAULT_MODEL, "blend")
RELATIVE_CHURN: tuple[str, ...] = tuple(name for name, _, _ in RELATIVE_CHURN_RATIOS)
#: The feature sets an external table with the Kamei metrics chooses among.
EXTERNAL_SETS: FeatureSets = (("kamei", (FEATURES,)), ("kamei+relative", (FEATURES, RELATIVE_CHURN)))


def with_relative_churn(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` with the :data:`RELATIVE_CHURN` columns (``churn = la + ld`` when absent);
    ``table`` itself when it lacks a metric they need. Denominators below 1 count as 1 (an empty file or a
    commit without files), so every ratio is finite on finite metrics; missing values stay missing."""
    needed = {c for _, num, den in RELATIVE_CHURN_RATIOS for c in (num, den)} - {"churn"}
    if not needed <= set(table.columns):
        return table
    out = table.copy()
    churn = out["churn"] if "churn" in out.columns else out["la"] + out["ld"]
    for name, num, den in RELATIVE_CHURN_RATIOS:
        top = churn if num == "churn" else out[num]
        out[name] = top.astype(np.float64) / np.maximum(out[den].astype(np.float64), 1.0)
    out.attrs = dict(table.attrs)
    return out


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The chosen candidate (its name, model kind and fixed parameters), the validation ROC-AUC of every
    candidate, and why."""

    name: str
    kind: str
    params: dict[str, Any]
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def describe(self) -> str:
        """One line for the summary and the report: the chosen model and its score beside the default's.

        The default is named as such in parentheses: "0.809 against 0.790 for lightgbm, half-life 365" read
        as if the chosen blend had the default's half-life."""
        score = self.scores.get(self.name)
        default = candidate_name(0.0, {"half_life_days": HALF_LIVES[0]})
        if score is None:
            return f"{self.name}: {self.reason}"
        versus = (
            ""
            if self.name == default or default not in self.scores
            else f" against {self.scores[default]:.3f} for the default ({default})"
        )
        return f"{self.name}, validation ROC-AUC {score:.3f}{versus}; {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.name,
            "kind": self.kind,
            "params": self.params,
            "scores": self.scores,
            "reason": self.reason,
        }


def candidate_name(weight: float, params: Mapping[str, Any]) -> str:
    """``lightgbm``, ``logreg`` or ``blend w=0.5``, with ``half-life 365`` or ``no decay``."""
    family = "lightgbm" if weight == 0 else "logreg" if weight == 1 else f"blend w={weight:g}"
    half_life = params.get("half_life_days")
    return f"{family}, " + ("no decay" if half_life is None else f"half-life {half_life:g}")


def _candidate(weight: float, half_life: float | None) -> tuple[str, dict[str, Any]]:
    if weight == 0:
        return "lightgbm", {"half_life_days": half_life}
    if weight == 1:
        return "logreg", {"half_life_days": half_life}
    return "blend", {"linear_weight": weight, "half_life_days": half_life}


def blend_raw(boosted: npt.ArrayLike, linear: npt.ArrayLike, weight: float) -> npt.NDArray[np.float64]:
    """The blend's raw log-odds: ``(1 - weight) * boosted + weight * linear``."""
    return (1.0 - weight) * np.asarray(boosted, dtype=np.float64) + weight * np.asarray(
        linear, dtype=np.float64
    )


def _fold_raw(model: JITModel, fit: pd.DataFrame, valid: pd.DataFrame) -> npt.NDArray[np.float64]:
    model.fit(fit, fit[LABEL].to_numpy(), times=fit[TIME].to_numpy())
    return np.asarray(model._raw(model._inputs(valid)), dtype=np.float64)


def default_choice(reason: str) -> ModelChoice:
    """The default model (LightGBM, one-year half-life), chosen for ``reason``."""
    params = {"half_life_days": HALF_LIVES[0]}
    return ModelChoice(candidate_name(0.0, params), DEFAULT_MODEL, params, {}, reason)


def choose_model(
    train: pd.DataFrame,
    *,
    features: tuple[str, ...] | list[str],
    gap: timedelta,
    seed: int = 0,
    min_gain: float = 0.002,
    weights: tuple[float, ...] = LINEAR_WEIGHTS,
    half_lives: tuple[float | None, ...] = HALF_LIVES,
) -> ModelChoice:
    """The blend weight and recency half-life with the best mean ROC-AUC over the tuner's time-ordered
    validation folds inside ``train`` (module docstring); the default (LightGBM, ``half_lives[0]``) unless
    the best beats it by ``min_gain``, or when no fold has both classes."""
    try:
        folds = validation_folds(train[TIME], n_folds=3, gap=gap)
    except InputError:
        return default_choice("too few rows for validation folds: the default model")
    labels = train[LABEL].to_numpy()
    usable = [
        f for f in folds if len(np.unique(labels[f.train])) == 2 and len(np.unique(labels[f.test])) == 2
    ]
    if not usable:
        return default_choice("no validation fold has both classes: the default model")
    columns = [*features, TIME, LABEL]
    scores: dict[str, float] = {}
    choices: dict[str, tuple[str, dict[str, Any]]] = {}
    for half_life in half_lives:
        per_weight: dict[float, list[float]] = {w: [] for w in weights}
        for fold in usable:
            fit = train.iloc[fold.train].loc[:, columns]
            valid = train.iloc[fold.test].loc[:, columns]
            common: dict[str, Any] = {
                "features": tuple(features),
                "half_life_days": half_life,
                "cv_folds": 0,
                "random_state": seed,
            }
            zeros = np.zeros(len(valid))
            boosted = _fold_raw(LightGBMJIT(**common), fit, valid) if min(weights) < 1 else zeros
            linear = _fold_raw(LogisticJIT(**common), fit, valid) if max(weights) > 0 else zeros
            y = valid[LABEL].to_numpy()
            for w in weights:
                raw = blend_raw(boosted, linear, w)
                per_weight[w].append(roc_auc(y, raw))
        for w, values in per_weight.items():
            kind, params = _candidate(w, half_life)
            name = candidate_name(w, params)
            scores[name] = round(float(np.mean(values)), 4)
            choices[name] = (kind, params)
    default = candidate_name(0.0, {"half_life_days": half_lives[0]})
    best = max(scores, key=lambda n: scores[n])
    chosen = best if default not in scores or scores[best] >= scores[default] + min_gain else default
    kind, params = choices[chosen]
    rows = int(sum(len(f.test) for f in usable))
    reason = (
        f"mean validation ROC-AUC over {len(usable)} time-ordered folds of the training part "
        f"({rows} validation commits in all), "
        f"the default kept unless a candidate gains at least {min_gain}"
    )
    return ModelChoice(chosen, kind, dict(params), scores, reason)


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
    select: bool = True,
) -> TrainResult:
    """:func:`defectops.training.evaluate.train`, where the default model (``kind`` in
    :data:`CHOOSING_KINDS`, no fixed ``params``, ``select``) first makes its choices on the training part
    of the same time split: the relative-churn set for a table of the 14 Kamei metrics, then the model
    family and recency (:func:`choose_model`). Tuning then searches the chosen model's parameters with those
    fixed. The choices are in the result's ``choices`` (``as_dict()``: ``model_choice``, ``feature_set``)."""
    if kind not in CHOOSING_KINDS or params or not select:
        return train_model(
            table,
            kind=kind,
            budget_seconds=budget_seconds,
            gap=gap,
            test_fraction=test_fraction,
            seed=seed,
            ranking=ranking,
            refit=refit,
            params=params,
        )
    split = time_split(table[TIME], test_fraction=test_fraction, gap=gap)
    feature_choice = None
    if list(feature_columns(table)) == list(FEATURES):
        widened = with_relative_churn(table)
        if widened is not table:
            part = widened.iloc[split.train].reset_index(drop=True)
            feature_choice = choose_features(part, kind=kind, gap=gap, seed=seed, candidates=EXTERNAL_SETS)
            table = with_features(widened, feature_choice.features)
    part = table.iloc[split.train].reset_index(drop=True)
    choice = choose_model(part, features=feature_columns(table), gap=gap, seed=seed)
    result = train_model(
        table,
        kind=choice.kind,
        budget_seconds=budget_seconds,
        gap=gap,
        test_fraction=test_fraction,
        seed=seed,
        ranking=ranking,
        refit=refit,
        params=choice.params,
    )
    choices = {"model_choice": choice.as_dict()}
    if feature_choice is not None:
        choices["feature_set"] = feature_choice.as_dict()
    return replace(result, choices=choices)
