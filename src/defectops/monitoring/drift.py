"""Drift checks: per feature, on the score, multivariate, and streaming detectors.

Why several tests: no single statistic works across types and sample sizes.

* Numeric features: the two-sample Kolmogorov-Smirnov test while either sample is small or medium; once
  both have at least ``large_sample_size`` values, the Wasserstein distance divided by the reference IQR
  (std if the IQR is 0). With tens of thousands of rows KS rejects for shifts far too small to matter,
  whereas a distance in units of the reference spread keeps one meaning at every size.
* Categorical features (and numeric ones with very few distinct values): Pearson's chi-square test of the
  2 x k contingency table while small, the Jensen-Shannon distance (base 2, in [0, 1]) when large.
* PSI on everything, from quantile bins of the reference (categories for categorical features), an epsilon
  for empty bins and the 0.1 / 0.25 conventions. PSI has no sampling model, so it only raises drift when the
  window is large enough that its own noise cannot reach the significant level (see :func:`psi_noise_floor`).
* The p-value tests of one window share the family-wise ``alpha`` (Bonferroni over the features and the
  score), so a window without drift raises a false alarm with probability at most ``alpha``.
* Multivariate: PCA reconstruction error against a band from reference chunks, which catches a change in how
  the features move together even when every marginal looks unchanged.
* Streaming: Page-Hinkley and an ADWIN-style detector with the River interface (``update(x)``,
  ``drift_detected``) for the score stream and the positive-prediction stream.

This module gives the per-feature verdicts; the records are in :mod:`defectops.monitoring.drift_records`,
the statistics in :mod:`defectops.monitoring.drift_stats`, the multivariate check in
:mod:`defectops.monitoring.drift_pca`, the streaming detectors in :mod:`defectops.monitoring.drift_streams`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from defectops.config import MonitoringSettings
from defectops.errors import InputError
from defectops.monitoring.drift_records import FeatureDrift, FeatureKind, TestName
from defectops.monitoring.drift_stats import (
    FloatArray,
    category_table,
    chi_square_test,
    jensen_shannon_distance,
    ks_test,
    normalized_wasserstein,
    psi_from_counts,
    psi_level,
    psi_noise_floor,
    psi_numeric,
    sorted_values,
)

_P_FLOOR = 1e-300


# ---------------------------------------------------------------------------------------------------------
# feature typing


def classify_feature(reference: pd.Series, settings: MonitoringSettings) -> FeatureKind:
    """Numeric if the reference is numeric with more than ``discrete_max_levels`` distinct values.

    Booleans, strings and categories are categorical; so are numeric flags and tiny counts, because KS on
    heavily tied data is conservative to the point of missing real changes.
    """
    if pd.api.types.is_bool_dtype(reference) or not pd.api.types.is_numeric_dtype(reference):
        return "categorical"
    if int(reference.nunique(dropna=True)) <= settings.discrete_max_levels:
        return "categorical"
    return "numeric"


def _numeric_values(series: pd.Series, name: str) -> FloatArray:
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise InputError(f"column {name!r} is not numeric in both frames: {exc}") from None
    finite: FloatArray = values[np.isfinite(values)]
    return finite


# ---------------------------------------------------------------------------------------------------------
# per-feature verdict


def alpha_per_test(settings: MonitoringSettings, n_tests: int) -> float:
    """Bonferroni share of the family-wise alpha."""
    return settings.alpha / max(n_tests, 1)


def _p_score(p_value: float, alpha: float) -> float:
    return math.log(max(p_value, _P_FLOOR)) / math.log(alpha)


def feature_drift(
    name: str,
    reference: pd.Series,
    window: pd.Series,
    *,
    settings: MonitoringSettings,
    n_tests: int,
    kind: FeatureKind | None = None,
) -> FeatureDrift:
    """Test one feature, choosing the test by type and sample size (see the module docstring).

    ``n_tests`` is the number of p-value tests sharing the family-wise alpha in this window.
    """
    kind = kind or classify_feature(reference, settings)
    alpha = alpha_per_test(settings, n_tests)
    miss_ref = float(reference.isna().mean()) if len(reference) else 0.0
    miss_win = float(window.isna().mean()) if len(window) else 0.0
    if kind == "numeric":
        ref_values = sorted_values(_numeric_values(reference, name))
        win_values = sorted_values(_numeric_values(window, name))
        n_ref, n_win = len(ref_values), len(win_values)
    else:
        table = category_table(reference, window, settings.max_categories)
        n_ref, n_win = int(table.reference.sum()), int(table.window.sum())
    base = {
        "feature": name,
        "kind": kind,
        "n_reference": n_ref,
        "n_window": n_win,
        "missing_share_reference": miss_ref,
        "missing_share_window": miss_win,
    }
    if min(n_ref, n_win) < settings.min_samples:
        return FeatureDrift(
            **base,
            test=None,
            statistic=None,
            p_value=None,
            threshold=alpha,
            drift_score=None,
            psi=None,
            psi_level=None,
            psi_noise_floor=None,
            psi_counts=False,
            new_category_share=None,
            drift_detected=False,
            skipped_reason=f"fewer than {settings.min_samples} values (reference {n_ref}, window {n_win})",
        )
    large = min(n_ref, n_win) >= settings.large_sample_size
    test: TestName
    p_value: float | None = None
    new_share: float | None = None
    if kind == "numeric":
        if large:
            test, statistic, threshold = (
                "wasserstein",
                normalized_wasserstein(ref_values, win_values),
                settings.wasserstein_threshold,
            )
        else:
            test, threshold = "ks", alpha
            statistic, p_value = ks_test(ref_values, win_values)
        psi, n_bins = psi_numeric(ref_values, win_values, settings.psi_bins, settings.psi_epsilon)
    else:
        if large:
            test, statistic, threshold = (
                "jensen_shannon",
                jensen_shannon_distance(table.reference, table.window),
                settings.jensen_shannon_threshold,
            )
        else:
            test, threshold = "chi2", alpha
            statistic, p_value = chi_square_test(table.reference, table.window)
        psi = psi_from_counts(table.reference, table.window, settings.psi_epsilon)
        n_bins = len(table.labels)
        new_share = table.new_share
    if p_value is None:
        score = statistic / threshold
        primary = statistic > threshold
    else:
        score = _p_score(p_value, alpha)
        primary = p_value < alpha
    floor = psi_noise_floor(n_ref, n_win, n_bins, alpha)
    psi_counts = floor < settings.psi_significant
    level = psi_level(psi, settings)
    return FeatureDrift(
        **base,
        test=test,
        statistic=statistic,
        p_value=p_value,
        threshold=threshold,
        drift_score=score,
        psi=psi,
        psi_level=level,
        psi_noise_floor=floor,
        psi_counts=psi_counts,
        new_category_share=new_share,
        drift_detected=bool(primary or (psi_counts and level == "significant")),
    )


def detect_feature_drift(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    features: Sequence[str],
    *,
    settings: MonitoringSettings,
    n_tests: int | None = None,
) -> list[FeatureDrift]:
    """Per-feature drift of every listed feature; ``n_tests`` defaults to the features plus the score."""
    missing = [name for name in features if name not in reference.columns or name not in window.columns]
    if missing:
        raise InputError(f"feature columns missing from the reference or the window: {', '.join(missing)}")
    family = n_tests if n_tests is not None else len(features) + 1
    return [
        feature_drift(name, reference[name], window[name], settings=settings, n_tests=family)
        for name in features
    ]


def prediction_drift(
    reference_scores: pd.Series,
    window_scores: pd.Series,
    *,
    settings: MonitoringSettings,
    n_tests: int,
) -> FeatureDrift:
    """Drift of the model's score: the same numeric tests, on the column 'score'."""
    return feature_drift(
        "score", reference_scores, window_scores, settings=settings, n_tests=n_tests, kind="numeric"
    )
