"""Significance of a difference between two models (issue #20): the service's A/B split, in pure functions.

Which test, and why:

* **Matured labels, ROC-AUC: DeLong's test** (DeLong, DeLong & Clarke-Pearson 1988, with the placement
  values of Sun & Xu 2014). ROC-AUC is the metric the promotion gate ranks by; DeLong gives its variance in
  closed form, so the p-value and the sample size need no resampling. In shadow mode both models scored
  the *same* requests: the test is paired (the covariance of the two AUCs is subtracted, which is what makes
  small differences detectable). In canary mode each request went to one arm: the test is unpaired (the
  two variances add).
* **Labels pending, proxies:** the share of requests each arm flags (``score >= its threshold``) with the
  pooled two-proportion z-test, and whether the score distributions differ (paired: Wilcoxon signed-rank
  of the score differences; unpaired: two-sample Kolmogorov-Smirnov). A proxy difference says the arms
  *behave* differently, never which one is right.
* **Sample size at 80% power** (two-sided, alpha 0.05): for the AUC difference, the variance of the
  observed difference scales as 1/n, so ``n = n_now * (z_{1-a/2} + z_{power})^2 * var_now / diff^2``
  rows (matured labels) in all; for the flag rate, the classic per-arm formula
  ``n = (z_{1-a/2} sqrt(2 pbar qbar) + z_{power} sqrt(p1 q1 + p2 q2))^2 / (p1 - p2)^2``. Both assume the
  observed difference is the true one; with no observed difference no size suffices (None).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from defectops.errors import InputError

FloatArray = npt.NDArray[np.float64]
ALPHA: Final = 0.05
POWER: Final = 0.8


@dataclass(frozen=True, slots=True)
class TestResult:
    """One two-sided test of (B - A): the estimates, the statistic, its p-value and the size needed.

    ``needed`` is the sample size at which the observed difference would be significant at ``power``
    (rows in all for the AUC test, per arm for proportions; None when the difference is 0 or undefined);
    ``unit`` says which.
    """

    name: str
    a: float
    b: float
    statistic: float
    p_value: float
    n: int
    needed: int | None
    unit: str
    alpha: float = ALPHA

    @property
    def difference(self) -> float:
        return self.b - self.a

    @property
    def significant(self) -> bool:
        return math.isfinite(self.p_value) and self.p_value < self.alpha

    def as_dict(self) -> dict[str, Any]:
        def clean(value: float) -> float | None:
            return value if math.isfinite(value) else None

        return {
            "test": self.name,
            "a": clean(self.a),
            "b": clean(self.b),
            "difference": clean(self.difference),
            "statistic": clean(self.statistic),
            "p_value": clean(self.p_value),
            "significant": self.significant,
            "n": self.n,
            "needed": self.needed,
            "needed_unit": self.unit,
            "alpha": self.alpha,
        }


def _z(quantile: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(quantile))


def _two_sided(z: float) -> float:
    from scipy.stats import norm

    return float(2.0 * norm.sf(abs(z))) if math.isfinite(z) else math.nan


def placements(y: object, score: object) -> tuple[float, FloatArray, FloatArray]:
    """ROC-AUC and DeLong's placement values: ``v10[i]`` = share of negatives positive ``i`` outscores (ties
    one half), ``v01[j]`` = share of positives that outscore negative ``j``."""
    labels = np.asarray(y, dtype=np.float64).ravel()
    scores = np.asarray(score, dtype=np.float64).ravel()
    if len(labels) != len(scores):
        raise InputError(f"{len(labels)} labels but {len(scores)} scores")
    positive, negative = scores[labels == 1], scores[labels == 0]
    m, n = len(positive), len(negative)
    if m == 0 or n == 0:
        return math.nan, np.empty(0), np.empty(0)
    from scipy.stats import rankdata

    both = rankdata(np.concatenate([positive, negative]))
    v10 = (both[:m] - rankdata(positive)) / n
    v01 = 1.0 - (both[m:] - rankdata(negative)) / m
    return float(v10.mean()), v10, v01


def _sample_variance(values: FloatArray) -> float:
    return float(np.var(values, ddof=1)) if len(values) > 1 else 0.0


def auc_variance(y: object, score: object) -> tuple[float, float]:
    """ROC-AUC and its DeLong variance ``var(v10)/m + var(v01)/n``."""
    auc, v10, v01 = placements(y, score)
    if not math.isfinite(auc):
        return auc, math.nan
    return auc, _sample_variance(v10) / len(v10) + _sample_variance(v01) / len(v01)


def _needed_rows(difference: float, variance: float, n: int, alpha: float, power: float) -> int | None:
    if not (math.isfinite(difference) and math.isfinite(variance)) or difference == 0 or variance <= 0:
        return None
    z = _z(1.0 - alpha / 2.0) + _z(power)
    return math.ceil(n * z * z * variance / (difference * difference))


def _auc_result(
    name: str, auc_a: float, auc_b: float, variance: float, n: int, alpha: float, power: float
) -> TestResult:
    difference = auc_b - auc_a
    if not (math.isfinite(difference) and math.isfinite(variance)):
        return TestResult(name, auc_a, auc_b, math.nan, math.nan, n, None, "matured labels", alpha)
    if variance <= 0:
        statistic = 0.0 if difference == 0 else math.copysign(math.inf, difference)
        p_value = 1.0 if difference == 0 else 0.0
    else:
        statistic = difference / math.sqrt(variance)
        p_value = _two_sided(statistic)
    needed = _needed_rows(difference, variance, n, alpha, power)
    return TestResult(name, auc_a, auc_b, statistic, p_value, n, needed, "matured labels", alpha)


def delong_paired(
    y: object, score_a: object, score_b: object, *, alpha: float = ALPHA, power: float = POWER
) -> TestResult:
    """Paired DeLong test of AUC(B) - AUC(A) on the same rows: ``var = var_a + var_b - 2 cov``."""
    auc_a, v10_a, v01_a = placements(y, score_a)
    auc_b, v10_b, v01_b = placements(y, score_b)
    n = len(np.asarray(y).ravel())
    if not (math.isfinite(auc_a) and math.isfinite(auc_b)):
        return _auc_result("DeLong (paired)", auc_a, auc_b, math.nan, n, alpha, power)
    m, k = len(v10_a), len(v01_a)
    d10, d01 = v10_b - v10_a, v01_b - v01_a
    variance = _sample_variance(d10) / m + _sample_variance(d01) / k
    return _auc_result("DeLong (paired)", auc_a, auc_b, variance, n, alpha, power)


def delong_unpaired(
    y_a: object,
    score_a: object,
    y_b: object,
    score_b: object,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
) -> TestResult:
    """Unpaired DeLong test of AUC(B) - AUC(A) on two independent sets of rows: the variances add."""
    auc_a, var_a = auc_variance(y_a, score_a)
    auc_b, var_b = auc_variance(y_b, score_b)
    n = len(np.asarray(y_a).ravel()) + len(np.asarray(y_b).ravel())
    return _auc_result("DeLong (unpaired)", auc_a, auc_b, var_a + var_b, n, alpha, power)


def two_proportion_test(
    x_a: int, n_a: int, x_b: int, n_b: int, *, alpha: float = ALPHA, power: float = POWER
) -> TestResult:
    """Pooled two-proportion z-test of ``x_b/n_b - x_a/n_a`` and the per-arm size needed at ``power``."""
    if n_a <= 0 or n_b <= 0 or not (0 <= x_a <= n_a and 0 <= x_b <= n_b):
        raise InputError(f"proportions need 0 <= x <= n and n > 0: {x_a}/{n_a}, {x_b}/{n_b}")
    p_a, p_b = x_a / n_a, x_b / n_b
    pooled = (x_a + x_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    if se == 0:
        statistic, p_value = 0.0, 1.0
    else:
        statistic = (p_b - p_a) / se
        p_value = _two_sided(statistic)
    return TestResult(
        "two-proportion z (flag rate)",
        p_a,
        p_b,
        statistic,
        p_value,
        n_a + n_b,
        proportion_sample_size(p_a, p_b, alpha=alpha, power=power),
        "per arm",
        alpha,
    )


def proportion_sample_size(
    p_a: float, p_b: float, *, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Per-arm size for a two-sided pooled two-proportion test to detect ``p_b - p_a`` (module docstring)."""
    if p_a == p_b:
        return None
    mean = (p_a + p_b) / 2.0
    root = _z(1.0 - alpha / 2.0) * math.sqrt(2.0 * mean * (1.0 - mean)) + _z(power) * math.sqrt(
        p_a * (1.0 - p_a) + p_b * (1.0 - p_b)
    )
    return math.ceil(root * root / (p_a - p_b) ** 2)


def score_shift(score_a: object, score_b: object, *, paired: bool, alpha: float = ALPHA) -> TestResult:
    """Do the arms' score distributions differ? Paired: Wilcoxon signed-rank of ``b - a``; unpaired:
    two-sample Kolmogorov-Smirnov. ``a`` and ``b`` are the median scores; no sample size (None)."""
    from scipy.stats import ks_2samp, wilcoxon

    a = np.asarray(score_a, dtype=np.float64).ravel()
    b = np.asarray(score_b, dtype=np.float64).ravel()
    if len(a) == 0 or len(b) == 0:
        raise InputError("a score comparison needs scores in both arms")
    if paired:
        if len(a) != len(b):
            raise InputError("paired scores must have the same length")
        if np.all(a == b):
            return TestResult("Wilcoxon signed-rank (scores)", float(np.median(a)), float(np.median(b)),
                              0.0, 1.0, len(a), None, "pairs", alpha)  # fmt: skip
        result = wilcoxon(b, a)
        name, n = "Wilcoxon signed-rank (scores)", len(a)
    else:
        result = ks_2samp(a, b)
        name, n = "Kolmogorov-Smirnov (scores)", len(a) + len(b)
    return TestResult(
        name,
        float(np.median(a)),
        float(np.median(b)),
        float(result.statistic),
        float(result.pvalue),
        n,
        None,
        "pairs" if paired else "predictions",
        alpha,
    )
