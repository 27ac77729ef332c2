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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy import stats
from scipy.special import rel_entr

from defectops.errors import InputError
from defectops.monitoring.settings import MonitoringSettings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
FeatureKind = Literal["numeric", "categorical"]
TestName = Literal["ks", "wasserstein", "chi2", "jensen_shannon"]
PsiLevel = Literal["ok", "moderate", "significant"]

OTHER = "__other__"
NEW = "__new__"
MISSING = "__missing__"
_P_FLOOR = 1e-300
_MAX_PLOTTED_CHUNKS = 500
_MIN_BAND_HALF_WIDTH = 1e-6


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureDrift(_Record):
    """The drift verdict of one feature (or of the score) between the reference and the window.

    ``drift_score`` puts every test on one scale where 1 is the threshold: the distance divided by its
    threshold, or ``ln(p) / ln(alpha_per_test)`` for the p-value tests.
    """

    feature: str
    kind: FeatureKind
    test: TestName | None
    statistic: float | None
    p_value: float | None
    threshold: float
    drift_score: float | None
    psi: float | None
    psi_level: PsiLevel | None
    psi_noise_floor: float | None
    psi_counts: bool
    n_reference: int
    n_window: int
    missing_share_reference: float
    missing_share_window: float
    new_category_share: float | None
    drift_detected: bool
    skipped_reason: str | None = None


class MultivariateDrift(_Record):
    """PCA reconstruction error of the window against the band of reference chunk errors."""

    features: list[str]
    n_components: int
    explained_variance: float
    chunk_size: int
    n_reference_chunks: int
    reference_error_mean: float
    reference_error_std: float
    band_lower: float
    band_upper: float
    window_error: float
    window_chunk_errors: list[float]
    reference_chunk_errors: list[float]
    chunks_outside_band: int
    drift_detected: bool


class StreamDrift(_Record):
    """A streaming detector run over the window after a warm-up on the end of the reference."""

    detector: Literal["page_hinkley", "adwin"]
    target: Literal["score", "positive_rate"]
    n_warmup: int
    n_window: int
    detections: int
    first_detection: int | None
    drift_detected: bool


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
# numeric statistics


def _sorted(values: FloatArray) -> FloatArray:
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
    q25, q75 = _quantiles(_sorted(reference), [0.25, 0.75])
    iqr = float(q75 - q25)
    if iqr > 0:
        return iqr
    std = float(np.std(reference))
    return std if std > 0 else 1.0


def wasserstein(reference: FloatArray, window: FloatArray) -> float:
    """Wasserstein-1 distance of two samples: the area between their empirical CDFs."""
    u, v = _sorted(reference), _sorted(window)
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
    reference, window = _sorted(reference), _sorted(window)
    if clip > 0:
        low, high = _quantiles(reference, [clip, 1.0 - clip])
        reference = np.clip(reference, low, high)  # clipping keeps the order
        window = np.clip(window, low, high)
    return wasserstein(reference, window) / spread(reference)


def quantile_edges(reference: FloatArray, bins: int) -> FloatArray:
    """Inner bin edges at the reference quantiles 1/bins .. (bins-1)/bins, duplicates removed."""
    probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges: FloatArray = np.unique(_quantiles(_sorted(reference), probs))
    return edges


def binned_counts(values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts per bin ``[e_{i-1}, e_i)`` with open ends; ``len(edges) + 1`` bins."""
    below = np.searchsorted(_sorted(values), edges, side="left")  # values < each edge
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
        ref_values = _sorted(_numeric_values(reference, name))
        win_values = _sorted(_numeric_values(window, name))
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


# ---------------------------------------------------------------------------------------------------------
# multivariate


class PCAReconstructionDrift:
    """Multivariate drift: how badly a PCA fitted on the reference reconstructs the window.

    Fit: median imputation, standard scaling and a PCA keeping the fewest components that explain
    ``pca_variance`` of the reference variance, but never all of them (at most p - 1 of p): with every
    component kept the reconstruction is exact and the error is rounding noise. Check: the reference's
    per-row errors (Euclidean norm of the residual in scaled space) are grouped in chunks of the comparison
    size; the band is their mean +- ``pca_band_sigmas`` std (at least 1e-6, so an exact linear dependency
    such as churn = la + ld gives a band of zero width plus rounding, not of rounding alone). The window's
    mean error outside the band is drift. A changed correlation between features raises the error even when
    every marginal distribution is unchanged.
    """

    def __init__(self, settings: MonitoringSettings) -> None:
        self.settings = settings
        self.features: list[str] = []
        self._medians: FloatArray = np.empty(0)
        self._scaler: Any = None  # sklearn objects are untyped
        self._mean: FloatArray = np.empty(0)
        self._components: FloatArray = np.empty((0, 0))
        self._explained = 0.0
        self._reference_errors: FloatArray = np.empty(0)

    def fit(self, reference: pd.DataFrame, features: Sequence[str]) -> Self:
        """Fit imputation, scaler and PCA on the reference numeric features."""
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        if len(features) < 2:
            raise InputError("the multivariate check needs at least two numeric features")
        self.features = list(features)
        matrix = self._matrix(reference, fit=True)
        if len(matrix) < 2 * self.settings.pca_reference_chunks:
            needed = 2 * self.settings.pca_reference_chunks
            raise InputError(f"the multivariate check needs at least {needed} reference rows")
        scaler = StandardScaler().fit(matrix)
        # covariance_eigh: n_rows >> n_features, so the p x p eigenproblem is far cheaper than an SVD of X
        pca = PCA(n_components=None, svd_solver="covariance_eigh").fit(scaler.transform(matrix))
        cumulative = np.cumsum(pca.explained_variance_ratio_)
        keep = int(np.searchsorted(cumulative, self.settings.pca_variance - 1e-12)) + 1
        keep = max(1, min(keep, len(self.features) - 1))
        self._scaler = scaler
        self._mean = np.asarray(pca.mean_, dtype=np.float64)
        self._components = np.asarray(pca.components_[:keep], dtype=np.float64)
        self._explained = float(cumulative[keep - 1])
        self._reference_errors = self.row_errors(reference)
        return self

    def _matrix(self, frame: pd.DataFrame, *, fit: bool = False) -> FloatArray:
        matrix = np.column_stack(
            [frame[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in self.features]
        )
        matrix[~np.isfinite(matrix)] = np.nan
        if fit:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: median 0 below
                medians = np.nanmedian(matrix, axis=0)
            self._medians = np.where(np.isnan(medians), 0.0, medians)
        rows, cols = np.nonzero(np.isnan(matrix))
        matrix[rows, cols] = self._medians[cols]
        return matrix

    def row_errors(self, frame: pd.DataFrame) -> FloatArray:
        """Per-row reconstruction error (Euclidean norm of the residual in scaled space)."""
        if self._scaler is None:
            raise InputError("PCAReconstructionDrift.fit must be called before checking a window")
        centred = self._scaler.transform(self._matrix(frame)) - self._mean
        restored = (centred @ self._components.T) @ self._components
        errors: FloatArray = np.linalg.norm(centred - restored, axis=1)
        return errors

    def check(self, window: pd.DataFrame) -> MultivariateDrift:
        """Compare the window's mean reconstruction error with the reference band."""
        errors = self.row_errors(window)
        n_ref = len(self._reference_errors)
        if len(errors) < self.settings.min_samples:
            raise InputError(f"the multivariate check needs at least {self.settings.min_samples} window rows")
        chunk = max(1, min(len(errors), n_ref // self.settings.pca_reference_chunks))
        ref_chunks = _chunk_means(self._reference_errors, chunk)
        win_chunks = _chunk_means(errors, chunk)
        mean = float(np.mean(ref_chunks))
        std = float(np.std(ref_chunks, ddof=1))
        half_width = max(self.settings.pca_band_sigmas * std, _MIN_BAND_HALF_WIDTH)
        lower, upper = mean - half_width, mean + half_width
        window_error = float(np.mean(errors))
        return MultivariateDrift(
            features=self.features,
            n_components=len(self._components),
            explained_variance=self._explained,
            chunk_size=chunk,
            n_reference_chunks=len(ref_chunks),
            reference_error_mean=mean,
            reference_error_std=std,
            band_lower=lower,
            band_upper=upper,
            window_error=window_error,
            window_chunk_errors=[float(v) for v in win_chunks[-_MAX_PLOTTED_CHUNKS:]],
            reference_chunk_errors=[float(v) for v in ref_chunks[:_MAX_PLOTTED_CHUNKS]],
            chunks_outside_band=int(np.sum((win_chunks < lower) | (win_chunks > upper))),
            drift_detected=not lower <= window_error <= upper,
        )


def _chunk_means(errors: FloatArray, size: int) -> FloatArray:
    usable = (len(errors) // size) * size
    means: FloatArray = errors[:usable].reshape(-1, size).mean(axis=1)
    return means


# ---------------------------------------------------------------------------------------------------------
# streaming detectors


class PageHinkley:
    """Page-Hinkley test for a change of the mean of a stream (River's interface and semantics).

    ``update(x)`` folds in one value; ``drift_detected`` is true right after the value that crossed the
    threshold, and the next update starts afresh. With the running mean ``m_t`` the cumulative sums are
    ``U_t = alpha * U_{t-1} + (x_t - m_t - delta)`` (increase) and
    ``D_t = alpha * D_{t-1} + (x_t - m_t + delta)`` (decrease); an increase is flagged when
    ``U_t - min U > threshold``, a decrease when ``max D - D_t > threshold``.
    """

    def __init__(
        self,
        *,
        delta: float = 0.005,
        threshold: float = 50.0,
        min_instances: int = 30,
        alpha: float = 1.0,
        mode: Literal["up", "down", "both"] = "both",
    ) -> None:
        self.delta = delta
        self.threshold = threshold
        self.min_instances = min_instances
        self.alpha = alpha
        self.mode = mode
        self.drift_detected = False
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.mean = 0.0
        self._sum_up = 0.0
        self._min_up = math.inf
        self._sum_down = 0.0
        self._max_down = -math.inf

    @property
    def statistic(self) -> float:
        """The larger of the two Page-Hinkley statistics right now (0 before any value)."""
        if self.n == 0:
            return 0.0
        return max(self._sum_up - self._min_up, self._max_down - self._sum_down)

    def update(self, x: float) -> None:
        """Fold in one value."""
        if self.drift_detected:
            self._reset()
            self.drift_detected = False
        self.n += 1
        self.mean += (x - self.mean) / self.n
        deviation = x - self.mean
        self._sum_up = self.alpha * self._sum_up + deviation - self.delta
        self._min_up = min(self._min_up, self._sum_up)
        self._sum_down = self.alpha * self._sum_down + deviation + self.delta
        self._max_down = max(self._max_down, self._sum_down)
        if self.n < self.min_instances:
            return
        up = self._sum_up - self._min_up > self.threshold
        down = self._max_down - self._sum_down > self.threshold
        self.drift_detected = (up and self.mode != "down") or (down and self.mode != "up")


class Adwin:
    """ADWIN-style adaptive window (Bifet & Gavaldà 2007) on a bounded buffer, checked every ``clock`` values.

    Every ``clock`` values it splits the window into an older part (n0 values) and a newer part of
    n1 = clock, 2 clock, ... values (the blocks that arrived since earlier checks), each part at least
    ``min_window_length`` long. With the window variance ``v``, ``m = 1/n0 + 1/n1`` and
    ``dd = ln(2 ln(n) / delta)`` (River's form of the bound), a split whose means differ by more than
    ``sqrt(2 m v dd) + 2/3 dd m`` is a change: the older part of the oldest such split is dropped, the check
    repeats, and ``drift_detected`` is true after this update. Like ADWIN's buckets, the block grid keeps a
    check cheap (O(n / clock) with running sums); unlike them it keeps the last ``max_window`` raw values.
    """

    def __init__(
        self,
        *,
        delta: float = 0.002,
        clock: int = 32,
        max_window: int = 10_000,
        min_window_length: int = 5,
    ) -> None:
        self.delta = delta
        self.clock = clock
        self.max_window = max_window
        self.min_window_length = min_window_length
        self.drift_detected = False
        self.n_seen = 0
        # running sums of x and x^2 before each slot: the window [start, end) sums to cum[end] - cum[start]
        self._cum: FloatArray = np.zeros(2 * max_window + 1, dtype=np.float64)
        self._cum2: FloatArray = np.zeros(2 * max_window + 1, dtype=np.float64)
        self._start = 0
        self._end = 0

    @property
    def width(self) -> int:
        """Number of values currently in the window."""
        return self._end - self._start

    @property
    def estimation(self) -> float:
        """Mean of the current window (0 when empty)."""
        if self.width == 0:
            return 0.0
        return float(self._cum[self._end] - self._cum[self._start]) / self.width

    def update(self, x: float) -> None:
        """Fold in one value; on a clock tick look for a cut."""
        self.drift_detected = False
        if self._end + 1 == len(self._cum):
            width = self.width
            base, base2 = self._cum[self._start], self._cum2[self._start]
            self._cum[: width + 1] = self._cum[self._start : self._end + 1] - base
            self._cum2[: width + 1] = self._cum2[self._start : self._end + 1] - base2
            self._start, self._end = 0, width
        self._cum[self._end + 1] = self._cum[self._end] + x
        self._cum2[self._end + 1] = self._cum2[self._end] + x * x
        self._end += 1
        if self.width > self.max_window:
            self._start += 1
        self.n_seen += 1
        if self.n_seen % self.clock == 0:
            while self._cut():
                self.drift_detected = True

    def _cut(self) -> bool:
        """Drop the older part at the oldest significant split; True if something was dropped."""
        low = self.min_window_length
        n = self.width
        n1 = np.arange(self.clock, n - low + 1, self.clock, dtype=np.int64)
        n1 = n1[n1 >= low]
        if len(n1) == 0:
            return False
        start, end = self._start, self._end
        total = float(self._cum[end] - self._cum[start])
        mean = total / n
        variance = max(float(self._cum2[end] - self._cum2[start]) / n - mean * mean, 0.0)
        n0 = n - n1
        newer = self._cum[end] - self._cum[end - n1]
        difference = np.abs((total - newer) / n0 - newer / n1)
        m = 1.0 / n0 + 1.0 / n1
        dd = math.log(2.0 * math.log(n) / self.delta)
        epsilon = np.sqrt(2.0 * m * variance * dd) + (2.0 / 3.0) * dd * m
        exceeding = np.flatnonzero(difference > epsilon)
        if len(exceeding) == 0:
            return False
        self._start += int(n0[exceeding].min())
        return True


def stream_drift(
    reference_scores: FloatArray,
    window_scores: FloatArray,
    *,
    settings: MonitoringSettings,
    decision_threshold: float | None = None,
) -> list[StreamDrift]:
    """Run Page-Hinkley on the score and ADWIN on the positive-prediction stream over the window.

    Both first see the last ``stream_warmup`` reference values so that the window is judged against the
    reference, then every window value in order; only detections inside the window count.
    """
    warm = reference_scores[len(reference_scores) - min(settings.stream_warmup, len(reference_scores)) :]
    threshold = settings.decision_threshold if decision_threshold is None else decision_threshold
    page_hinkley = PageHinkley(
        delta=settings.page_hinkley_delta,
        threshold=settings.page_hinkley_threshold,
        min_instances=settings.page_hinkley_min_instances,
    )
    adwin = Adwin(
        delta=settings.adwin_delta, clock=settings.adwin_clock, max_window=settings.adwin_max_window
    )
    for value in warm.tolist():
        page_hinkley.update(value)
        adwin.update(1.0 if value >= threshold else 0.0)
    ph_hits: list[int] = []
    adwin_hits: list[int] = []
    for index, value in enumerate(window_scores.tolist()):
        page_hinkley.update(value)
        if page_hinkley.drift_detected:
            ph_hits.append(index)
        adwin.update(1.0 if value >= threshold else 0.0)
        if adwin.drift_detected:
            adwin_hits.append(index)
    return [
        StreamDrift(
            detector=detector,
            target=target,
            n_warmup=len(warm),
            n_window=len(window_scores),
            detections=len(hits),
            first_detection=hits[0] if hits else None,
            drift_detected=bool(hits),
        )
        for detector, target, hits in (
            ("page_hinkley", "score", ph_hits),
            ("adwin", "positive_rate", adwin_hits),
        )
    ]
