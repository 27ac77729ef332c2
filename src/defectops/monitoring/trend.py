"""Features that grow with project age, compared without their normal trend.

Why: ``exp``, ``rexp``, ``sexp`` (the author's earlier changes), ``ndev``, ``nuc`` (the files' earlier
developers and changes), ``age`` and ``lt`` count or weigh everything that happened before a change. As a
project ages they rise by construction, so any window is "later" than its reference and a plain two-sample
test on them fires forever — on flask, the served window drifted on ``exp``, ``rexp`` and ``sexp`` in every
cycle, with or without a real change. Which metrics these are is part of the feature contract
(:attr:`defectops.data.FeatureSpec.grows_with_age`).

How: on the log scale the growth is close to linear in time over a couple of years, so the trend is the
least-squares slope ``b`` of the median of ``log1p(value)`` against time over the last ``trend_months`` months
of the training history, or its last :data:`MIN_TREND_ROWS` commits when those months hold fewer
(:func:`fit_slope`; a slope within :data:`MIN_T` standard errors of zero is no trend, and the feature is
compared as it is). Both samples are then compared as
``log1p(value) - b * (t - t0)``, with ``t`` the commit time in the reference and the prediction time in the
window: what the past growth predicts is removed, a change the trend does not explain (a new team of
authors with no experience, a jump in experience) remains. The slope is fitted on the history, never on the
window, so a drift inside the window cannot hide itself. KS is unchanged by the log (a monotone map); PSI bins
and the Wasserstein scale are taken on the adjusted values.

The model's score inherits the trend: a champion that learnt "experienced authors break less" scores a later
window lower whatever happens, and a score-drift test against the reference's scores fires on age alone.
:func:`advance` moves the reference's age-growing features along the same fitted growth to the window's
time, ``log1p(value') = log1p(value) + b * (t_window - t)``, so that the model can score the reference as
its commits would have been measured then; the score is compared against those scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from defectops.data import CONTRACT, TIME

#: The trend is fitted on at least this many of the latest commits, however far back they go.
MIN_TREND_ROWS = 600
#: Time-ordered bins of equal size whose medians the trend line goes through.
BINS = 12
#: Fewer than ``BINS * MIN_BIN_ROWS`` commits of history: no trend is fitted (compared as it is, with a note).
MIN_BIN_ROWS = 20
#: A slope within this many standard errors of zero is no trend (t = 3 with 10 degrees of freedom: p = 0.013).
MIN_T = 3.0
#: Seconds per day, for time differences in days.
DAY = 86_400.0


class TrendAdjustment(BaseModel):
    """How one age-growing feature was compared: the fitted growth and the shift it implies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature: str
    slope_per_year: float
    commits: int
    shift: float
    note: str


@dataclass(frozen=True, slots=True)
class Detrended:
    """Reference and window with the age-growing features replaced by their adjusted values, and the
    window's median time (days since the epoch) the growth was projected to (None: nothing adjusted)."""

    reference: pd.DataFrame
    window: pd.DataFrame
    adjustments: list[TrendAdjustment]
    notes: list[str]
    window_day: float | None = None


def _days(times: pd.Series) -> np.ndarray:
    # total_seconds, not the int64 view: the view's unit depends on the column's resolution (ns, us, s)
    stamps = pd.to_datetime(pd.Series(times), utc=True)
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return np.asarray(seconds.to_numpy(dtype=np.float64) / DAY, dtype=np.float64)


def fit_slope(history: pd.DataFrame, feature: str, months: int) -> tuple[float, int]:
    """Slope per day of the median of log1p(feature) against time, and the number of commits it rests on
    (0 when there are too few: slope 0).

    The commits are those of the last ``months`` months, or the last :data:`MIN_TREND_ROWS` commits when that
    span holds fewer (a slow project: flask makes about 70 commits a year). They are cut, in time order, into
    :data:`BINS` bins of equal size; the slope is the least-squares line through each bin's (mean time,
    median of log1p). Fewer than ``BINS * MIN_BIN_ROWS`` commits: no fit.
    """
    frame = pd.DataFrame(
        {
            "day": _days(history[TIME]),
            "value": np.log1p(pd.to_numeric(history[feature], errors="coerce").clip(lower=0)),
        }
    ).dropna()
    frame = frame.sort_values("day", kind="stable")
    if len(frame) < BINS * MIN_BIN_ROWS:
        return 0.0, 0
    recent = frame[frame["day"] > frame["day"].iloc[-1] - months * 30.4375]
    chosen = recent if len(recent) >= MIN_TREND_ROWS else frame.tail(MIN_TREND_ROWS)
    if len(chosen) < BINS * MIN_BIN_ROWS:
        return 0.0, 0
    bins = np.arange(len(chosen)) * BINS // len(chosen)
    grouped = chosen.groupby(bins)
    days, medians = grouped["day"].mean().to_numpy(), grouped["value"].median().to_numpy()
    if float(np.ptp(days)) <= 0:
        return 0.0, 0
    slope, intercept = np.polyfit(days, medians, 1)
    residuals = medians - (slope * days + intercept)
    spread = float(np.sum((days - days.mean()) ** 2))
    error = float(np.sqrt(np.sum(residuals**2) / (len(days) - 2) / spread))
    if error > 0 and abs(slope) < MIN_T * error:
        # Not a trend, noise: shifting would move tied counts (ndev = 4 in a fifth of the commits) off their
        # values and make KS fire on a trend that does not exist.
        return 0.0, len(chosen)
    return float(slope), len(chosen)


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
        if used and slope == 0.0:
            adjustments.append(
                TrendAdjustment(
                    feature=feature,
                    slope_per_year=0.0,
                    commits=used,
                    shift=0.0,
                    note=f"{feature}: no significant growth in the last {used} training commits: as is",
                )
            )
            continue
        shift = slope * (float(np.median(win_days)) - origin)
        for frame, days in ((reference, ref_days), (window, win_days)):
            values = pd.to_numeric(frame[feature], errors="coerce").clip(lower=0)
            frame[feature] = np.log1p(values.to_numpy(dtype=np.float64)) - slope * (days - origin)
        if used:
            note = (
                f"{feature}: compared on log1p after removing its growth with project age "
                f"({slope * 365.25:+.3f} per year, fitted on the last {used} training commits; "
                f"window shifted by {-shift:+.3f})"
            )
        else:
            note = f"{feature}: compared on log1p; too little training history to fit its growth (no shift)"
        adjustments.append(
            TrendAdjustment(
                feature=feature, slope_per_year=slope * 365.25, commits=used, shift=shift, note=note
            )
        )
    return Detrended(reference, window, adjustments, [], float(np.median(win_days)))


def advance(reference: pd.DataFrame, detrended: Detrended) -> pd.DataFrame | None:
    """A copy of ``reference`` (values as mined, with its ``time`` column) with every age-growing feature
    that :func:`detrend` found growing moved along its fitted growth to the window's median time:
    ``value' = expm1(log1p(value) + b * (t_window - t))``, never below 0. None when no feature grows (the
    reference is already what it would be then) or the times are missing."""
    growing = [a for a in detrended.adjustments if a.slope_per_year != 0.0]
    if not growing or detrended.window_day is None or TIME not in reference.columns:
        return None
    out = reference.copy()
    ahead = detrended.window_day - _days(reference[TIME])
    for adjustment in growing:
        values = pd.to_numeric(out[adjustment.feature], errors="coerce").clip(lower=0)
        moved = np.log1p(values.to_numpy(dtype=np.float64)) + adjustment.slope_per_year / 365.25 * ahead
        out[adjustment.feature] = np.expm1(np.maximum(moved, 0.0))
    return out
