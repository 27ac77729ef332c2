"""Per-feature, prediction and multivariate drift: statistics checked against hand arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from defectops.config import MonitoringSettings, load_monitoring_settings
from defectops.errors import ConfigError, InputError
from defectops.monitoring.drift import classify_feature, detect_feature_drift, feature_drift, prediction_drift
from defectops.monitoring.drift_pca import PCAReconstructionDrift
from defectops.monitoring.drift_stats import (
    NEW,
    OTHER,
    category_table,
    chi_square_test,
    jensen_shannon_distance,
    ks_test,
    normalized_wasserstein,
    psi_from_counts,
    psi_level,
    psi_noise_floor,
    psi_numeric,
    quantile_edges,
    spread,
)

SETTINGS = MonitoringSettings()


def test_psi_from_counts_matches_hand_arithmetic() -> None:
    # r = (.5, .5), w = (.25, .75):
    # (.25 - .5) ln(.25/.5) + (.75 - .5) ln(.75/.5) = .25 * .693147 + .25 * .405465 = .274653
    assert psi_from_counts([50, 50], [25, 75], 1e-4) == pytest.approx(0.274653, abs=1e-6)
    # an empty reference bin uses epsilon: r = (1, 1e-4), w = (.5, .5)
    # (.5 - 1) ln(.5) + (.5 - 1e-4) ln(.5 / 1e-4) = .346574 + .4999 * 8.517193 = 4.604319
    assert psi_from_counts([100, 0], [50, 50], 1e-4) == pytest.approx(4.604319, abs=1e-6)
    assert psi_from_counts([10, 20, 30], [10, 20, 30], 1e-4) == 0.0


def test_psi_levels_follow_the_01_025_convention() -> None:
    assert psi_level(0.099, SETTINGS) == "ok"
    assert psi_level(0.1, SETTINGS) == "moderate"
    assert psi_level(0.2499, SETTINGS) == "moderate"
    assert psi_level(0.25, SETTINGS) == "significant"


def test_psi_numeric_uses_reference_quantile_bins() -> None:
    reference = np.arange(100.0)
    # quartiles of 0..99 (linear interpolation): 24.75, 49.5, 74.25 -> 4 bins of 25 reference values each
    assert quantile_edges(reference, 4).tolist() == [24.75, 49.5, 74.25]
    # window 0..49 fills the first two bins (25 each), the last two are empty (epsilon):
    # 2 * (.5 - .25) ln(.5/.25) + 2 * (1e-4 - .25) ln(1e-4/.25) = .346574 + 3.910458 = 4.257032
    psi, bins = psi_numeric(reference, np.arange(50.0), 4, 1e-4)
    assert bins == 4
    assert psi == pytest.approx(4.257032, abs=1e-5)


def test_psi_noise_floor_is_the_scaled_chi_square_quantile() -> None:
    # (1/100 + 1/100) * chi2.ppf(.99, 9) = 0.02 * 21.666 = 0.43332: above 0.25, so PSI cannot raise drift
    assert psi_noise_floor(100, 100, 10, 0.01) == pytest.approx(0.43332, abs=1e-4)
    # ten times the data: 0.002 * 21.666 = 0.043332
    assert psi_noise_floor(1000, 1000, 10, 0.01) == pytest.approx(0.043332, abs=1e-5)


def test_ks_statistic_and_p_value() -> None:
    # 0..99 against 50..149: the empirical CDFs differ by at most .5 (at x = 49.x)
    statistic, p_value = ks_test(np.arange(100.0), np.arange(50.0, 150.0))
    assert statistic == pytest.approx(0.5)
    # Kolmogorov limit: lambda = sqrt(100*100/200) * .5 = 3.54, Q = 2 exp(-2 * 12.5) = 2.8e-11
    assert p_value < 1e-9
    _, same = ks_test(np.arange(100.0), np.arange(100.0))
    assert same == pytest.approx(1.0)


def test_wasserstein_is_normalised_by_the_reference_iqr() -> None:
    reference = np.arange(100.0)
    # a pure shift by 10 moves every unit of mass 10: W1 = 10; IQR = 74.25 - 24.75 = 49.5; 10 / 49.5 = .20202
    assert normalized_wasserstein(reference, reference + 10, clip=0) == pytest.approx(0.202020, abs=1e-6)
    # one huge outlier: unclipped W1 = (1e6 - 99) / 100 = 9999.01 -> 202 IQRs; clipped to the reference's
    # [q01, q99] = [.99, 98.01] both samples become identical, distance 0
    window = np.concatenate([np.arange(99.0), [1e6]])
    assert normalized_wasserstein(reference, window, clip=0) == pytest.approx(9999.01 / 49.5)
    assert normalized_wasserstein(reference, window) == pytest.approx(0.0, abs=1e-12)


def test_spread_falls_back_to_std_then_one() -> None:
    # 90 zeros and 10 ones: IQR 0, std = sqrt(.1 * .9) = .3
    assert spread(np.array([0.0] * 90 + [1.0] * 10)) == pytest.approx(0.3)
    assert spread(np.array([5.0] * 10)) == 1.0


def test_category_table_buckets_other_missing_and_new() -> None:
    reference = pd.Series(["a"] * 6 + ["b"] * 3 + ["c"])
    window = pd.Series(["a", "c", "d", None])
    table = category_table(reference, window, max_categories=2)
    # kept: a (6), b (3); c is rarer -> other; d is unseen -> new; None -> missing
    assert table.labels == ["a", "b", OTHER, "__missing__", NEW]
    assert table.reference.tolist() == [6, 3, 1, 0, 0]
    assert table.window.tolist() == [1, 0, 1, 1, 1]
    assert table.new_share == pytest.approx(0.25)


def test_numeric_categories_match_across_int_and_float() -> None:
    table = category_table(pd.Series([0, 0, 1]), pd.Series([0.0, 1.0, 1.0]), max_categories=10)
    assert table.labels == ["0", "1"]
    assert table.window.tolist() == [1, 2]


def test_chi_square_matches_hand_arithmetic() -> None:
    # 2x2 table [[30, 70], [50, 50]]: expected 40/60 per row;
    # chi2 = 100/40 + 100/60 + 100/40 + 100/60 = 8.3333, p = erfc(sqrt(8.3333 / 2)) = .0038924
    statistic, p_value = chi_square_test(np.array([30, 70]), np.array([50, 50]))
    assert statistic == pytest.approx(8.333333, abs=1e-5)
    assert p_value == pytest.approx(math.erfc(math.sqrt(8.333333333 / 2)), rel=1e-6)
    assert chi_square_test(np.array([10, 0]), np.array([5, 0])) == (0.0, 1.0)


def test_jensen_shannon_of_a_new_category_share() -> None:
    # p = (.5, .5, 0), q = (.475, .475, .05), m = (.4875, .4875, .025)
    # KL(p||m) = ln(.5/.4875) = .025318; KL(q||m) = .95 ln(.475/.4875) + .05 ln 2 = .009981
    # JSD = (.025318 + .009981) / 2 = .017649 nats = .025463 bits; distance = sqrt = .159572
    assert jensen_shannon_distance([500, 500, 0], [475, 475, 50]) == pytest.approx(0.159572, abs=1e-5)
    assert jensen_shannon_distance([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-7)
    assert jensen_shannon_distance([1, 0], [0, 1]) == pytest.approx(1.0)


def test_classify_feature_by_type_and_levels() -> None:
    assert classify_feature(pd.Series(np.linspace(0, 1, 50)), SETTINGS) == "numeric"
    assert classify_feature(pd.Series([0, 1] * 25), SETTINGS) == "categorical"  # a flag like 'fix'
    assert classify_feature(pd.Series([True, False] * 25), SETTINGS) == "categorical"
    assert classify_feature(pd.Series(["core", "web"] * 25), SETTINGS) == "categorical"


def test_test_choice_follows_sample_size() -> None:
    rng = np.random.default_rng(7)
    reference = pd.Series(rng.normal(size=400))
    window = pd.Series(rng.normal(size=400))
    small = feature_drift("x", reference, window, settings=SETTINGS, n_tests=5)
    assert small.test == "ks"
    assert small.threshold == pytest.approx(0.01)  # alpha .05 / 5 tests (Bonferroni)
    assert small.p_value is not None
    assert small.drift_score == pytest.approx(math.log(small.p_value) / math.log(0.01))
    large_settings = MonitoringSettings(large_sample_size=300)
    large = feature_drift("x", reference, window, settings=large_settings, n_tests=5)
    assert large.test == "wasserstein"
    assert large.p_value is None
    assert large.drift_score == pytest.approx(large.statistic / 0.1)  # type: ignore[operator]
    categorical = feature_drift(
        "team", pd.Series(["a", "b"] * 200), pd.Series(["a", "b"] * 200), settings=large_settings, n_tests=5
    )
    assert categorical.test == "jensen_shannon"
    assert categorical.statistic == pytest.approx(0.0, abs=1e-7)
    assert not categorical.drift_detected


def test_a_mean_shift_is_detected_and_no_shift_is_not() -> None:
    rng = np.random.default_rng(11)
    reference = pd.DataFrame({"x": rng.normal(size=2000), "y": rng.normal(size=2000)})
    same = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    shifted = pd.DataFrame({"x": rng.normal(0.5, 1.0, size=500), "y": rng.normal(size=500)})
    ok = detect_feature_drift(reference, same, ["x", "y"], settings=SETTINGS)
    assert [f.drift_detected for f in ok] == [False, False]
    found = detect_feature_drift(reference, shifted, ["x", "y"], settings=SETTINGS)
    assert [f.drift_detected for f in found] == [True, False]
    assert found[0].test == "ks"
    # population KS distance of N(0,1) vs N(.5,1): max Phi(x) - Phi(x - .5) = 2 Phi(.25) - 1 = .197
    assert 0.12 < found[0].statistic < 0.28  # type: ignore[operator]


def test_new_category_share_is_detected_by_jensen_shannon() -> None:
    # 2% new category is right at the JS threshold .1 (see docs); 5% is .16, clearly beyond
    settings = MonitoringSettings(large_sample_size=1000)
    reference = pd.Series(["core"] * 1000 + ["web"] * 1000)
    window = pd.Series(["core"] * 950 + ["web"] * 950 + ["newteam"] * 100)
    result = feature_drift("team", reference, window, settings=settings, n_tests=1)
    assert result.test == "jensen_shannon"
    assert result.statistic == pytest.approx(0.159572, abs=1e-5)
    assert result.new_category_share == pytest.approx(0.05)
    assert result.drift_detected
    # PSI: (.05 - 1e-4) ln(.05/1e-4) + 2 * (.475 - .5) ln(.475/.5) = .310109 + .002565 = .312674
    assert result.psi == pytest.approx(0.312674, abs=1e-5)
    assert result.psi_level == "significant"


def test_small_windows_are_skipped_and_psi_is_not_trusted() -> None:
    reference = pd.Series(np.arange(1000.0))
    tiny = feature_drift("x", reference, pd.Series(np.arange(10.0)), settings=SETTINGS, n_tests=1)
    assert tiny.test is None
    assert not tiny.drift_detected
    assert tiny.skipped_reason is not None
    # 40 values: PSI noise floor (1/1000 + 1/40) chi2.ppf(.95, 9) = .026 * 16.92 = .44 > .25
    small = feature_drift(
        "x", reference, pd.Series(np.arange(0.0, 1000.0, 25.0)), settings=SETTINGS, n_tests=1
    )
    assert small.psi_counts is False


def test_missing_values_are_reported_and_dropped() -> None:
    reference = pd.Series([float(i) for i in range(100)])
    window = pd.Series([float(i) if i % 4 else None for i in range(100)])
    result = feature_drift("x", reference, window, settings=SETTINGS, n_tests=1)
    assert result.missing_share_window == pytest.approx(0.25)
    assert result.n_window == 75


def test_missing_feature_columns_are_an_input_error() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(InputError, match="missing"):
        detect_feature_drift(frame, frame, ["x", "nope"], settings=SETTINGS)


def test_prediction_drift_on_the_score() -> None:
    rng = np.random.default_rng(3)
    reference = pd.Series(rng.beta(2, 5, size=3000))
    window = pd.Series(rng.beta(3, 4, size=1000))  # mean .286 -> .429
    result = prediction_drift(reference, window, settings=SETTINGS, n_tests=15)
    assert result.feature == "score"
    assert result.kind == "numeric"
    assert result.drift_detected


def test_pca_reconstruction_catches_a_correlation_change_the_marginals_miss() -> None:
    rng = np.random.default_rng(5)

    def frame(n: int, sign: float) -> pd.DataFrame:
        x = rng.normal(size=n)
        return pd.DataFrame({"x": x, "y": sign * x + 0.2 * rng.normal(size=n), "z": rng.normal(size=n)})

    reference = frame(5000, 1.0)
    detector = PCAReconstructionDrift(SETTINGS).fit(reference, ["x", "y", "z"])
    same = detector.check(frame(500, 1.0))
    # chunk size = min(window 500, reference 5000 // 10) = 500 -> 10 reference chunks
    assert same.chunk_size == 500
    assert same.n_reference_chunks == 10
    assert same.band_lower == pytest.approx(same.reference_error_mean - 3 * same.reference_error_std)
    assert same.band_upper == pytest.approx(same.reference_error_mean + 3 * same.reference_error_std)
    assert not same.drift_detected
    # 2 of 3 components keep > 90% of the variance (x and y nearly collinear)
    assert same.n_components == 2
    flipped_frame = frame(500, -1.0)
    flipped = detector.check(flipped_frame)
    assert flipped.drift_detected
    assert flipped.window_error > flipped.band_upper
    marginals = detect_feature_drift(reference, flipped_frame, ["x", "y", "z"], settings=SETTINGS)
    assert not any(f.drift_detected for f in marginals)


def test_pca_needs_two_features_and_enough_rows() -> None:
    frame = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0) ** 2})
    with pytest.raises(InputError, match="two numeric"):
        PCAReconstructionDrift(SETTINGS).fit(frame, ["x"])
    with pytest.raises(InputError, match="reference rows"):
        PCAReconstructionDrift(SETTINGS).fit(frame.head(10), ["x", "y"])
    with pytest.raises(InputError, match="fit"):
        PCAReconstructionDrift(SETTINGS).check(frame)


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="psi_moderate"):
        MonitoringSettings(psi_moderate=0.3, psi_significant=0.25)
    with pytest.raises(ConfigError, match="alpha"):
        load_monitoring_settings(alpha=2.0)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFECTOPS_MONITOR_WASSERSTEIN_THRESHOLD", "0.2")
    assert load_monitoring_settings().wasserstein_threshold == 0.2
