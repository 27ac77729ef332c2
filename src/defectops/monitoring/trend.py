"""Features that grow with project age, compared without their normal trend.

Why: ``exp``, ``rexp``, ``sexp`` (the author's earlier changes), ``ndev``, ``nuc`` (the files' earlier
developers and changes), ``age`` and ``lt`` count or weigh everything that happened before a change. As a
project ages they rise by construction, so any window is "later" than its reference and a plain two-sample
test on them fires forever — on flask, the served window drifted on ``exp``, ``rexp`` and ``sexp`` in every
cycle, with or without a real change. Which metrics these are is part of the feature contract
(:attr:`defectops.data.FeatureSpec.grows_with_age`).

How: on the log scale the growth is close to linear in time over a couple of years, so the trend is the
least-squares slope ``b`` of the monthly median of ``log1p(value)`` against time over the last
``trend_months`` months of the training history (months with at least :data:`MIN_MONTH_ROWS` commits; at
least :data:`MIN_MONTHS` of them, else no adjustment and a note). Both samples are then compared as
``log1p(value) - b * (t - t0)``, with ``t`` the commit time in the reference and the prediction time in the
window: what the past growth predicts is removed, a change the trend does not explain (a new team of
authors with no experience, a jump in experience) remains. The slope is fitted on the history, never on the
window, so a drift inside the window cannot hide itself. KS is unchanged by the log (a monotone map); PSI bins
and the Wasserstein scale are taken on the adjusted values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from defectops.data import CONTRACT, TIME

#: Months with fewer commits than this do not enter the trend fit (their median is too noisy).
MIN_MONTH_ROWS = 20
#: Fewer usable months than this: no trend is fitted (the feature is compared as it is).
MIN_MONTHS = 6
#: Seconds per day, for time differences in days.
DAY = 86_400.0


class TrendAdjustment(BaseModel):
    """How one age-growing feature was compared: the fitted growth and the shift it implies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature: str
    slope_per_year: float
    months: int
    shift: float
    note: str


@dataclass(frozen=True, slots=True)
class Detrended:
    """Reference and window with the age-growing features replaced by their adjusted values."""

    reference: pd.DataFrame
    window: pd.DataFrame
    adjustments: list[TrendAdjustment]
    notes: list[str]


def _days(times: pd.Series) -> np.ndarray:
    # total_seconds, not the int64 view: the view's unit depends on the column's resolution (ns, us, s)
    stamps = pd.to_datetime(pd.Series(times), utc=True)
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return np.asarray(seconds.to_numpy(dtype=np.float64) / DAY, dtype=np.float64)


def fit_slope(history: pd.DataFrame, feature: str, months: int) -> tuple[float, int]:
    """Slope of the monthly median of log1p(feature) per day over the last ``months`` months, and the number
    of months it rests on (0 when there are fewer than :data:`MIN_MONTHS` usable ones: slope 0)."""
    times = pd.to_datetime(history[TIME], utc=True)
    frame = pd.DataFrame(
        {
            "month": times.dt.tz_convert(None).dt.to_period("M"),
            "day": _days(history[TIME]),
            "value": np.log1p(pd.to_numeric(history[feature], errors="coerce").clip(lower=0)),
        }
    ).dropna()
    if frame.empty:
        return 0.0, 0
    last = frame["month"].max()
    frame = frame[frame["month"] > last - months]
    grouped = frame.groupby("month")
    monthly = pd.DataFrame(
        {"n": grouped.size(), "day": grouped["day"].mean(), "median": grouped["value"].median()}
    )
    monthly = monthly[monthly["n"] >= MIN_MONTH_ROWS]
    if len(monthly) < MIN_MONTHS:
        return 0.0, 0
    slope = float(np.polyfit(monthly["day"].to_numpy(), monthly["median"].to_numpy(), 1)[0])
    return slope, len(monthly)


def detrend(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    features: Sequence[str],
    *,
    history: pd.DataFrame,
    window_time: str,
    months: int,
) -> Detrended:
    """Replace every age-growing feature of ``features`` by ``log1p(value) - slope * (t - t0)`` in copies of
    ``reference`` (times from its ``time`` column) and ``window`` (times from ``window_time``); the slope is
    fitted on ``history`` (the whole training snapshot). Without the times the features stay as they are."""
    growing = [f for f in features if f in CONTRACT and CONTRACT[f].grows_with_age]
    if not growing:
        return Detrended(reference, window, [], [])
    missing = [
        what
        for what, frame, column in (
            ("reference", reference, TIME),
            ("window", window, window_time),
            ("training history", history, TIME),
        )
        if column not in frame.columns
    ]
    if missing:
        note = (
            f"{', '.join(growing)} grow with project age, but no time in the {', '.join(missing)}: "
            "compared without removing their growth"
        )
        return Detrended(reference, window, [], [note])
    reference, window = reference.copy(), window.copy()
    ref_days, win_days = _days(reference[TIME]), _days(window[window_time])
    origin = float(np.median(ref_days))
    adjustments: list[TrendAdjustment] = []
    for feature in growing:
        slope, used = fit_slope(history, feature, months)
        shift = slope * (float(np.median(win_days)) - origin)
        for frame, days in ((reference, ref_days), (window, win_days)):
            values = pd.to_numeric(frame[feature], errors="coerce").clip(lower=0)
            frame[feature] = np.log1p(values.to_numpy(dtype=np.float64)) - slope * (days - origin)
        if used:
            note = (
                f"{feature}: compared on log1p after removing its growth with project age "
                f"({slope * 365.25:+.3f} per year over the last {used} months of training history; "
                f"window shifted by {-shift:+.3f})"
            )
        else:
            note = f"{feature}: compared on log1p; too little training history to fit its growth (no shift)"
        adjustments.append(
            TrendAdjustment(
                feature=feature, slope_per_year=slope * 365.25, months=used, shift=shift, note=note
            )
        )
    return Detrended(reference, window, adjustments, [])
