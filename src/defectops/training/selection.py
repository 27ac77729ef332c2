"""Automatic, time-aware choice of the feature groups a model learns from (#20).

Why groups and not single features: the richer features come in two groups with different costs and risks,
the mined ones (:data:`RICH_FEATURES`, computed from git alone) and the label-history ones
(:data:`LABEL_HISTORY_FEATURES`, which need the labels table at scoring time). Choosing among three nested
sets (Kamei-14; + mined; + mined + label history) on one validation window is cheap and stable; per-feature
wrapper selection on a window of a few dozen defects would mostly fit noise.

Time-aware: the choice is made only on the training part it is given (the caller passes the rows before the
held-out window), split by time into an earlier part to fit on and a later validation part after a gap of the
label waiting period. A larger set is kept only when its validation ROC-AUC beats the best smaller one by at
least ``min_gain``, so ties keep the simpler model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from defectops.data import FEATURES, LABEL, LABEL_HISTORY_FEATURES, RICH_FEATURES, TIME, time_split
from defectops.errors import DefectOpsError
from defectops.training.evaluate import fit_model
from defectops.training.metrics import roc_auc

FeatureSets = tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]

#: The nested candidate sets, smallest first: (name, feature groups).
FEATURE_SETS: FeatureSets = (
    ("kamei", (FEATURES,)),
    ("kamei+mined", (FEATURES, RICH_FEATURES)),
    ("kamei+mined+label-history", (FEATURES, RICH_FEATURES, LABEL_HISTORY_FEATURES)),
)
#: What ``defectops run`` chooses among: the sets every scoring path (CI, the service, the event workers)
#: computes from git and the miner state alone. The label-history set would also need the labels table at
#: scoring time, which those paths do not read yet (docs/metrics.md, "Richer features").
SCORABLE_SETS: FeatureSets = FEATURE_SETS[:2]


def scorable_sets(base: tuple[str, ...] | list[str] = FEATURES) -> FeatureSets:
    """:data:`SCORABLE_SETS` over ``base``: the inputs ``run --features`` chose (Kamei-14, or Kamei-14 with
    the code or Terraform metrics), alone or with the mined richer features."""
    base = tuple(base)
    if base == FEATURES:
        return SCORABLE_SETS
    extra = tuple(name for name in RICH_FEATURES if name not in base)
    return (("base", (base,)), ("base+mined", (base, extra)))


@dataclass(frozen=True, slots=True)
class FeatureChoice:
    """The chosen feature set, and the validation ROC-AUC of every candidate set (None: not evaluated)."""

    name: str
    features: tuple[str, ...]
    scores: dict[str, float | None] = field(default_factory=dict)
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.name,
            "features": list(self.features),
            "scores": self.scores,
            "reason": self.reason,
        }


def _columns(groups: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    return tuple(name for group in groups for name in group)


def available_sets(
    table: pd.DataFrame, candidates: FeatureSets = FEATURE_SETS
) -> list[tuple[str, tuple[str, ...]]]:
    """The candidate sets whose columns are all in ``table`` (at least Kamei-14 when it has them)."""
    return [(name, _columns(g)) for name, g in candidates if all(c in table.columns for c in _columns(g))]


def with_features(table: pd.DataFrame, features: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """``table`` (not copied) recording ``features`` as its model inputs (``feature_columns`` reads it)."""
    table.attrs["features"] = list(features)
    return table


def choose_features(
    train: pd.DataFrame,
    *,
    kind: str,
    gap: timedelta,
    seed: int = 0,
    validation_fraction: float = 0.25,
    min_gain: float = 0.005,
    candidates: FeatureSets = FEATURE_SETS,
) -> FeatureChoice:
    """Choose among :data:`FEATURE_SETS` on a time-ordered validation window inside ``train`` (module
    docstring); Kamei-14 when only it is available or the validation window cannot rank (one class)."""
    sets = available_sets(train, candidates)
    if not sets:
        raise DefectOpsError("the training table lacks the Kamei change metrics")
    scores: dict[str, float | None] = {name: None for name, _ in candidates}
    if len(sets) == 1:
        return FeatureChoice(sets[0][0], sets[0][1], scores, "only the Kamei metrics are available")
    try:
        split = time_split(train[TIME], test_fraction=validation_fraction, gap=gap)
    except DefectOpsError:
        return FeatureChoice(sets[0][0], sets[0][1], scores, "too few rows for a validation window")
    fit_part = train.iloc[split.train].reset_index(drop=True)
    valid = train.iloc[split.test].reset_index(drop=True)
    if fit_part[LABEL].nunique() < 2 or valid[LABEL].nunique() < 2:
        return FeatureChoice(sets[0][0], sets[0][1], scores, "the validation window has one class")
    y = valid[LABEL].to_numpy()
    for name, features in sets:
        fitted = fit_model(with_features(fit_part.copy(), features), kind=kind, gap=gap, seed=seed)
        scores[name] = round(float(roc_auc(y, np.asarray(fitted.model.predict_proba(valid)[:, 1]))), 4)
    best_name, best_features = sets[0]
    best = scores[best_name] or 0.0
    for name, features in sets[1:]:
        score = scores[name] or 0.0
        if score >= best + min_gain:
            best_name, best_features, best = name, features, score
    reason = (
        f"validation ROC-AUC on the latest {len(valid)} commits of the training part "
        f"({int(y.sum())} defect-inducing), a larger set kept when it gains at least {min_gain}"
    )
    return FeatureChoice(best_name, best_features, scores, reason)
