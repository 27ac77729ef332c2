"""The two-sample statistics of the drift checks (:mod:`defectops.monitoring.drift`): KS, normalised
Wasserstein and PSI for numeric features; category tables, chi-square and Jensen-Shannon for categorical
ones."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from scipy.special import rel_entr

from defectops.config import MonitoringSettings
from defectops.monitoring.drift_records import PsiLevel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

OTHER = "__other__"
NEW = "__new__"
MISSING = "__missing__"


# ---------------------------------------------------------------------------------------------------------
# numeric statistics


def sorted_values(values: FloatArray) -> FloatArray:
    """The values in ascending order (free when they already are: the checks sort each sample once)."""
    if len(values) < 2 or bool(np.all(values[1:] >= values[:-1])):
        return values
    ordered: FloatArray = np.sort(values)
    return ordered


def _quantiles(ordered: FloatArray, probs: npt.ArrayLike) -> FloatArray:
    """Quantiles of an ascending sample by linear interpolation (numpy's default method)."""
    position = np.asarray(probs, dtype=np.float64) * (len(ordered) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(ordered) - 1)
    fraction = position - low
    result: FloatArray = ordered[low] + fraction * (ordered[high] - ordered[low])
    return result


def ks_test(reference: FloatArray, window: FloatArray) -> tuple[float, float]:
    """Two-sample KS statistic and asymptotic p-value (ties make it conservative, never liberal)."""
    result = stats.ks_2samp(reference, window, method="asymp")
    return float(result.statistic), float(result.pvalue)


def spread(reference: FloatArray) -> float:
    """The reference scale for Wasserstein: IQR, else std, else 1 (a constant reference)."""
    q25, q75 = _quantiles(sorted_values(reference), [0.25, 0.75])
    iqr = float(q75 - q25)
    if iqr > 0:
        return iqr
    std = float(np.std(reference))
    return std if std > 0 else 1.0


def wasserstein(reference: FloatArray, window: FloatArray) -> float:
    """Wasserstein-1 distance of two samples: the area between their empirical CDFs."""
    u, v = sorted_values(reference), sorted_values(window)
    merged = np.sort(np.concatenate([u, v]), kind="stable")  # two sorted runs: a linear merge
    deltas = np.diff(merged)
    u_cdf = np.searchsorted(u, merged[:-1], side="right") / len(u)
    v_cdf = np.searchsorted(v, merged[:-1], side="right") / len(v)
    return float(np.sum(np.abs(u_cdf - v_cdf) * deltas))


def normalized_wasserstein(reference: FloatArray, window: FloatArray, clip: float = 0.01) -> float:
    """Wasserstein-1 distance in units of the reference spread (see :func:`spread`).

    Both samples are first clipped to the reference's ``[clip, 1 - clip]`` quantile range. Without this, the
    distance of a heavy-tailed feature (lines added, experience) is dominated by a handful of huge values
    and its sampling noise alone crosses the threshold; values beyond the reference's 1st/99th percentile
    still count, as values at that boundary.
    """
    reference, window = sorted_values(reference), sorted_values(window)
    if clip > 0:
        low, high = _quantiles(reference, [clip, 1.0 - clip])
        reference = np.clip(reference, low, high)  # clipping keeps the order
        window = np.clip(window, low, high)
    return wasserstein(reference, window) / spread(reference)


def quantile_edges(reference: FloatArray, bins: int) -> FloatArray:
    """Inner bin edges at the reference quantiles 1/bins .. (bins-1)/bins, duplicates removed."""
    probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges: FloatArray = np.unique(_quantiles(sorted_values(reference), probs))
    return edges


def binned_counts(values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts per bin ``[e_{i-1}, e_i)`` with open ends; ``len(edges) + 1`` bins."""
    below = np.searchsorted(sorted_values(values), edges, side="left")  # values < each edge
    counts: IntArray = np.diff(np.concatenate([[0], below, [len(values)]])).astype(np.int64)
    return counts


def psi_from_counts(reference: npt.ArrayLike, window: npt.ArrayLike, epsilon: float) -> float:
    """PSI = sum (w - r) ln(w / r) over bins, with shares of 0 replaced by ``epsilon``."""
    ref = np.asarray(reference, dtype=np.float64)
    win = np.asarray(window, dtype=np.float64)
    r = ref / ref.sum()
    w = win / win.sum()
    r = np.where(r == 0, epsilon, r)
    w = np.where(w == 0, epsilon, w)
    return float(np.sum((w - r) * np.log(w / r)))


def psi_numeric(reference: FloatArray, window: FloatArray, bins: int, epsilon: float) -> tuple[float, int]:
    """PSI on quantile bins of the reference; returns (psi, number of bins used)."""
    edges = quantile_edges(reference, bins)
    return (
        psi_from_counts(binned_counts(reference, edges), binned_counts(window, edges), epsilon),
        len(edges) + 1,
    )


def psi_level(psi: float, settings: MonitoringSettings) -> PsiLevel:
    """The 0.1 / 0.25 convention: below moderate is ok, at or above significant is a real shift."""
    if psi >= settings.psi_significant:
        return "significant"
    if psi >= settings.psi_moderate:
        return "moderate"
    return "ok"


def psi_noise_floor(n_reference: int, n_window: int, n_bins: int, alpha: float) -> float:
    """The (1 - alpha) quantile of PSI between two samples of one distribution.

    For small differences PSI behaves like ``(1/n_ref + 1/n_win) * chi2(bins - 1)``, so this is the value PSI
    exceeds by chance with probability alpha. PSI only raises drift when this floor is below the significant
    level; in smaller windows it is reported but not trusted.
    """
    if n_bins < 2:
        return 0.0
    return float((1.0 / n_reference + 1.0 / n_window) * stats.chi2.ppf(1.0 - alpha, n_bins - 1))


# ---------------------------------------------------------------------------------------------------------
# categorical statistics


@dataclass(frozen=True)
class CategoryTable:
    """Aligned category counts of the reference and the window."""

    labels: list[str]
    reference: IntArray
    window: IntArray

    @property
    def new_share(self) -> float:
        """Share of the window whose value the reference never had."""
        if NEW not in self.labels:
            return 0.0
        return float(self.window[self.labels.index(NEW)]) / max(int(self.window.sum()), 1)


def _category_counts(series: pd.Series) -> tuple[dict[Hashable, int], int]:
    missing = int(series.isna().sum())
    present = series.dropna()
    if pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        present = present.astype(np.float64)
    else:
        present = present.astype(str)
    counts = present.value_counts(sort=False)
    return {key: int(value) for key, value in counts.items()}, missing


def _label(key: Hashable) -> str:
    if isinstance(key, float):
        return f"{key:g}"
    return str(key)


def category_table(reference: pd.Series, window: pd.Series, max_categories: int) -> CategoryTable:
    """Counts over the reference's top categories, '__other__', '__missing__' and '__new__'.

    Unseen window values share one '__new__' bucket: a new team or language shows up as one clear signal
    rather than many tiny cells with no reference mass.
    """
    ref_counts, ref_missing = _category_counts(reference)
    win_counts, win_missing = _category_counts(window)
    ranked = sorted(ref_counts.items(), key=lambda item: (-item[1], _label(item[0])))
    kept = [key for key, _ in ranked[:max_categories]]
    kept_set = set(kept)
    labels = [_label(key) for key in kept]
    ref_row = [ref_counts[key] for key in kept]
    win_row = [win_counts.get(key, 0) for key in kept]
    other_ref = sum(count for key, count in ref_counts.items() if key not in kept_set)
    other_win = sum(count for key, count in win_counts.items() if key in ref_counts and key not in kept_set)
    new_win = sum(count for key, count in win_counts.items() if key not in ref_counts)
    for label, ref_value, win_value in (
        (OTHER, other_ref, other_win),
        (MISSING, ref_missing, win_missing),
        (NEW, 0, new_win),
    ):
        if ref_value or win_value:
            labels.append(label)
            ref_row.append(ref_value)
            win_row.append(win_value)
    return CategoryTable(labels, np.asarray(ref_row, dtype=np.int64), np.asarray(win_row, dtype=np.int64))


def chi_square_test(reference: IntArray, window: IntArray) -> tuple[float, float]:
    """Pearson chi-square test of homogeneity on the 2 x k table (no continuity correction)."""
    table = np.vstack([reference, window])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def jensen_shannon_distance(reference: npt.ArrayLike, window: npt.ArrayLike) -> float:
    """Jensen-Shannon distance in base 2 (0 = identical, 1 = disjoint supports)."""
    ref = np.asarray(reference, dtype=np.float64)
    win = np.asarray(window, dtype=np.float64)
    p = ref / ref.sum()
    q = win / win.sum()
    m = (p + q) / 2.0
    divergence = 0.5 * float(np.sum(rel_entr(p, m))) + 0.5 * float(np.sum(rel_entr(q, m)))
    return math.sqrt(max(divergence, 0.0) / math.log(2.0))
