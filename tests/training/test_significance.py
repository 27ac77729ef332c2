"""The A/B statistics (issue #20) against hand-worked values and independent scipy/scikit-learn calls."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency, norm
from sklearn.metrics import roc_auc_score

from defectops.errors import InputError
from defectops.training.significance import (
    auc_variance,
    delong_paired,
    delong_unpaired,
    placements,
    proportion_sample_size,
    score_shift,
    two_proportion_test,
)

Y = [1, 1, 0, 0]
A = [0.9, 0.4, 0.5, 0.1]  # positives 0.9 0.4, negatives 0.5 0.1
B = [0.9, 0.8, 0.2, 0.1]  # perfect ranking


def test_placements_and_delong_variance_by_hand() -> None:
    # v10: 0.9 beats both negatives -> 1; 0.4 beats 0.1 only -> 1/2. v01: negative 0.5 is beaten by 0.9
    # only -> 1/2; 0.1 by both -> 1. AUC = mean(v10) = 3/4. Sample variances (ddof 1): var(v10) =
    # (1/4)^2 + (1/4)^2 = 1/8, var(v01) = 1/8; var(AUC) = (1/8)/2 + (1/8)/2 = 1/8.
    auc, v10, v01 = placements(Y, A)
    assert auc == pytest.approx(0.75)
    assert list(v10) == [1.0, 0.5]
    assert list(v01) == [0.5, 1.0]
    assert auc_variance(Y, A) == pytest.approx((0.75, 0.125))


def test_placement_auc_equals_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    s = rng.integers(0, 6, 80).astype(float)  # many ties
    assert placements(y, s)[0] == pytest.approx(roc_auc_score(y, s))


def test_unpaired_delong_p_value_and_sample_size_by_hand() -> None:
    # B is perfect: AUC 1, all placements 1, variance 0. Difference 1/4, variance 1/8 + 0:
    # z = 0.25 / sqrt(0.125) = 0.70711, p = 2 * norm.sf(0.70711) = 0.4795.
    result = delong_unpaired(Y, A, Y, B)
    assert result.difference == pytest.approx(0.25)
    assert result.statistic == pytest.approx(0.25 / math.sqrt(0.125))
    assert result.p_value == pytest.approx(2 * norm.sf(0.25 / math.sqrt(0.125)))
    assert result.p_value == pytest.approx(0.4795, abs=1e-4)
    assert not result.significant
    # rows needed: n (8) * (z_0.975 + z_0.8)^2 * var / diff^2 = 8 * (1.959964 + 0.841621)^2 * 0.125 / 0.0625
    # = 8 * 7.848879 * 2 = 125.58 -> 126
    assert result.needed == 126


def test_paired_delong_subtracts_the_covariance() -> None:
    # Paired differences of placements B - A: d10 = [0, 1/2], d01 = [1/2, 0]; sample variances 1/8 each;
    # var = (1/8)/2 + (1/8)/2 = 1/8 -> the same z as above on this tiny case.
    result = delong_paired(Y, A, B)
    assert result.statistic == pytest.approx(0.25 / math.sqrt(0.125))
    # identical scores: no difference, p = 1, no sample size detects it
    same = delong_paired(Y, A, A)
    assert (same.p_value, same.needed, same.significant) == (1.0, None, False)


def test_two_proportion_p_value_against_scipy_chi_square() -> None:
    # The pooled z-test squared is Pearson's chi-square without continuity correction.
    result = two_proportion_test(30, 100, 45, 100)
    expected = chi2_contingency([[30, 70], [45, 55]], correction=False).pvalue
    assert result.p_value == pytest.approx(expected)
    # by hand: pooled 0.375, se = sqrt(0.375 * 0.625 * 0.02) = 0.068465, z = 0.15 / 0.068465 = 2.1909
    assert result.statistic == pytest.approx(2.1909, abs=1e-4)
    assert result.significant


def test_proportion_sample_size_by_hand() -> None:
    # p1 0.30, p2 0.45, pbar 0.375: 1.959964 * sqrt(2 * 0.375 * 0.625) = 1.959964 * 0.684653 = 1.341895;
    # 0.841621 * sqrt(0.21 + 0.2475) = 0.841621 * 0.676387 = 0.569263; (1.911158)^2 = 3.652525;
    # / 0.15^2 = 162.33 -> 163 per arm.
    assert proportion_sample_size(0.30, 0.45) == 163
    assert proportion_sample_size(0.3, 0.3) is None
    with pytest.raises(InputError):
        two_proportion_test(5, 0, 1, 10)


def test_score_shift_uses_the_paired_or_unpaired_test() -> None:
    a = np.linspace(0.1, 0.5, 30)
    paired = score_shift(a, a + 0.2, paired=True)
    assert paired.name.startswith("Wilcoxon")
    assert paired.significant
    same = score_shift(a, a, paired=True)
    assert same.p_value == 1.0
    unpaired = score_shift(a, a[::-1], paired=False)  # the same values: KS statistic 0
    assert unpaired.name.startswith("Kolmogorov")
    assert unpaired.statistic == 0.0
    assert not unpaired.significant
