"""Model inputs: the feature columns of ``X``, the rows' times, and the per-row training weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.data import DIFF, EFFORT, LABEL, MESSAGE, PATHS, TIME
from defectops.errors import InputError

FloatArray = npt.NDArray[np.float64]

#: Columns of a training table that are never features.
NOT_FEATURES = frozenset({LABEL, TIME, EFFORT, MESSAGE, PATHS, DIFF, "commit", "sha", "repo"})


@dataclass
class Inputs:
    """Model inputs: numeric features in ``features_`` order, (text model) the two text columns, and
    (hybrid model) the sentence vectors of each row's text, one row per change."""

    numeric: FloatArray
    message: list[str] | None = None
    paths: list[str] | None = None
    text_vectors: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.numeric.shape[0])

    def take(self, rows: npt.NDArray[np.int64]) -> Inputs:
        return Inputs(
            self.numeric[rows],
            None if self.message is None else [self.message[i] for i in rows],
            None if self.paths is None else [self.paths[i] for i in rows],
            None if self.text_vectors is None else self.text_vectors[rows],
        )


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


def times_of(X: object, times: object | None) -> pd.Series | None:
    if times is not None:
        return pd.Series(pd.to_datetime(np.asarray(times), utc=True))
    if isinstance(X, pd.DataFrame) and TIME in X.columns:
        return pd.Series(pd.to_datetime(X[TIME], utc=True).to_numpy())
    return None


def typical_ranges(numeric: FloatArray, features: list[str]) -> dict[str, list[float]]:
    """Per feature, the middle half of its values over the rows (25th and 75th percentile, NaN ignored): what
    the reasons call a usual value, so that "many lines added" says where the value lies among the commits
    the model learnt from, whichever way the model weighs it."""
    ranges: dict[str, list[float]] = {}
    for j, name in enumerate(features):
        column = numeric[:, j]
        column = column[np.isfinite(column)]
        if len(column):
            low, high = np.percentile(column, [25.0, 75.0])
            ranges[name] = [float(low), float(high)]
    return ranges
