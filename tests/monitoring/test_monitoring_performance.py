"""Label-free proxies, realized metrics on matured labels, and CBPE estimates."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from defectops.config import MonitoringSettings
from defectops.errors import InputError
from defectops.monitoring.performance import (
    estimate_performance,
    estimated_roc_auc,
    expected_calibration_error,
    label_free_proxies,
    matured_mask,
    realized_performance,
    score_summary,
)

SETTINGS = MonitoringSettings()
#: The hand-worked 8-label window is below the default label minimums; these tests check the arithmetic.
SMALL = MonitoringSettings(min_realized_labels=3, min_realized_per_class=1)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_score_summary_and_proxies_by_hand() -> None:
    scores = np.array([0.025, 0.175, 0.525, 0.975])  # bin centres of the 20 bins of width .05
    summary = score_summary(scores)
    assert summary.mean == pytest.approx(1.7 / 4)  # (.025 + .175 + .525 + .975) / 4 = .425
    counts = [0] * 20
    for index in (0, 3, 10, 19):
        counts[index] = 1
    assert summary.histogram_counts == counts
    assert summary.histogram_edges[0] == 0.0
    assert summary.histogram_edges[-1] == 1.0
    proxies = label_free_proxies(scores, settings=SETTINGS)
    assert proxies.positive_rate == 0.5  # .525 and .975 are >= .5
    assert proxies.high_risk_share == 0.25  # only .975 is >= .8
    assert label_free_proxies(scores, settings=SETTINGS, decision_threshold=0.1).positive_rate == 0.75
    # the model's own high band cut (twice its base rate) replaces the settings' fixed 0.8: .525 and .975
    own = label_free_proxies(scores, settings=SETTINGS, high_risk_threshold=0.4)
    assert (own.high_risk_threshold, own.high_risk_share) == (0.4, 0.5)


def _window() -> pd.DataFrame:
    # 8 matured rows, one without label, one whose label is dated after NOW
    return pd.DataFrame(
        {
            "score": [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1, 0.95, 0.05],
            "label": pd.array([1, 0, 1, 0, 1, 0, 0, 0, None, 1], dtype="Int64"),
            "label_time": pd.to_datetime(["2026-10-01"] * 9 + ["2026-12-01"], utc=True),
            "churn": [10, 50, 20, 5, 10, 30, 40, 35, 1, 1],
        }
    )


def test_matured_mask_respects_label_time() -> None:
    assert matured_mask(_window(), now=NOW).tolist() == [True] * 8 + [False, False]
    # naive 'now' is read as UTC
    assert matured_mask(_window(), now=datetime(2026, 12, 2)).tolist() == [True] * 8 + [False, True]
    assert not matured_mask(pd.DataFrame({"score": [0.5]}), now=NOW).any()


def test_realized_performance_by_hand() -> None:
    result = realized_performance(_window(), now=NOW, settings=SMALL)
    assert (result.n_window, result.n_matured, result.n_positive, result.n_negative) == (10, 8, 3, 5)
    # threshold .5: predicted positive .9 .8 .7 .6 -> TP 2 (.9, .7), FP 2, FN 1 (.4), TN 3
    assert result.precision == pytest.approx(0.5)
    assert result.recall == pytest.approx(2 / 3)
    assert result.f1 == pytest.approx(4 / 7)  # 2TP / (2TP + FP + FN) = 4 / 7
    # pairs (pos, neg): .9 beats all 5 negatives, .7 beats 4 (.6 .3 .2 .1), .4 beats 3 -> 12 / 15
    assert result.roc_auc == pytest.approx(0.8)
    # (.1^2 + .8^2 + .3^2 + .6^2 + .6^2 + .3^2 + .2^2 + .1^2) / 8 = 1.6 / 8
    assert result.brier == pytest.approx(0.2)
    # Recall@20% effort, budget 20% of churn 200 = 40, inspecting by density score / max(churn, 1)
    # (training's default): .6/5 = .12 (clean, 5), .9/10 = .09 (defective, 15), .4/10 = .04 (defective, 25),
    # .7/20 = .035 (defective, 45 > 40: not inspected) -> 2 of 3 defective changes
    assert result.recall_at_effort == pytest.approx(2 / 3)
    assert result.n_with_effort == 8
    # by risk alone: .9 (churn 10, defective) fits, .8 (50) would make 60 > 40 -> 1 of 3
    by_risk = realized_performance(
        _window(), now=NOW, settings=SMALL.model_copy(update={"effort_ranking": "risk"})
    )
    assert by_risk.recall_at_effort == pytest.approx(1 / 3)


def test_realized_without_labels_or_one_class() -> None:
    empty = realized_performance(pd.DataFrame({"score": [0.2, 0.7]}), now=NOW, settings=SETTINGS)
    assert empty.n_matured == 0
    assert empty.roc_auc is None
    assert empty.skipped_reason
    one_class = pd.DataFrame({"score": [0.2, 0.7, 0.4], "label": [0, 0, 0]})
    result = realized_performance(one_class, now=NOW, settings=SMALL)
    assert result.roc_auc is None
    assert result.recall is None
    assert result.f1 == 0.0  # FP 1, no TP
    assert result.brier == pytest.approx((0.04 + 0.49 + 0.16) / 3)


def test_too_few_labels_are_not_enough_labels_never_a_number() -> None:
    # 3 matured labels (1 defective, ranked below both clean ones): ROC-AUC would be 0.000 by chance.
    three = pd.DataFrame({"score": [0.1, 0.8, 0.9], "label": [1, 0, 0], "churn": [5, 5, 5]})
    result = realized_performance(three, now=NOW, settings=SETTINGS)
    assert (result.n_matured, result.n_positive, result.n_negative) == (3, 1, 2)
    assert (result.roc_auc, result.f1, result.brier, result.recall_at_effort) == (None, None, None, None)
    assert result.skipped_reason == "not enough labels (n=3, 30 needed)"
    # 30 labels, 4 defective (< 5 per class): F1, precision and Brier are shown; ROC-AUC and recall are not.
    scores = np.linspace(0.01, 0.99, 30)
    labels = np.zeros(30, dtype=int)
    labels[-4:] = 1  # the four highest scores are the defects
    thirty = realized_performance(
        pd.DataFrame({"score": scores, "label": labels}), now=NOW, settings=SETTINGS
    )
    assert thirty.roc_auc is None
    assert thirty.recall is None
    # predicted positive: scores >= .5, i.e. the top 15 -> TP 4, FP 11: precision 4/15, F1 8/(8+11) = 8/19
    assert thirty.precision == pytest.approx(4 / 15)
    assert thirty.f1 == pytest.approx(8 / 19)
    assert thirty.skipped_reason == "ROC-AUC needs 5 labels of each class (defective 4, clean 26)"
    labels[-5:] = 1  # a fifth defect: everything is judged, and the ranking is perfect
    judged = realized_performance(
        pd.DataFrame({"score": scores, "label": labels}), now=NOW, settings=SETTINGS
    )
    assert judged.roc_auc == pytest.approx(1.0)
    assert judged.recall == pytest.approx(1.0)
    assert judged.skipped_reason is None


def test_bad_labels_are_an_input_error() -> None:
    with pytest.raises(InputError, match="label"):
        realized_performance(pd.DataFrame({"score": [0.2], "label": [2]}), now=NOW, settings=SETTINGS)
    with pytest.raises(InputError, match="label"):
        realized_performance(pd.DataFrame({"score": [0.2], "label": ["yes"]}), now=NOW, settings=SETTINGS)


def test_cbpe_expected_confusion_matrix_by_hand() -> None:
    scores = np.array([0.9, 0.6, 0.3, 0.2])
    est = estimate_performance(scores, decision_threshold=0.5)
    # predicted positive .9 .6: TP = .9 + .6 = 1.5, FP = .1 + .4 = .5; negative .3 .2: FN = .5, TN = 1.5
    assert (est.expected_tp, est.expected_fp, est.expected_fn, est.expected_tn) == pytest.approx(
        (1.5, 0.5, 0.5, 1.5)
    )
    assert est.precision == pytest.approx(0.75)
    assert est.recall == pytest.approx(0.75)
    assert est.f1 == pytest.approx(0.75)
    assert est.accuracy == pytest.approx(0.75)
    # Brier = mean p(1-p) = (.09 + .24 + .21 + .16) / 4 = .175
    assert est.brier == pytest.approx(0.175)
    # concordant = sum over s_i > s_j of p_i (1 - p_j) = .36+.63+.72+.42+.48+.24 = 2.85;
    # pairs = sum p * sum (1-p) - sum p(1-p) = 2 * 2 - .7 = 3.3 -> 2.85 / 3.3
    assert est.roc_auc == pytest.approx(2.85 / 3.3)
    assert est.reference_calibration_error is None
    assert est.reliable is None


def test_estimated_roc_auc_of_ties_is_one_half() -> None:
    # one tie group: P = 1, N = 1, self pairs .5: (.5 * (1 - .5)) / (1 - .5) = .5
    assert estimated_roc_auc(np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert estimated_roc_auc(np.array([0.0, 0.0])) is None  # no expected defective change


def test_expected_calibration_error_by_hand() -> None:
    # one score per bin: |1-.9| + |0-.1| + |1-.8| + |1-.7| = .7, each with weight 1/4 -> .175
    labels = np.array([1.0, 0.0, 1.0, 1.0])
    assert expected_calibration_error(labels, np.array([0.9, 0.1, 0.8, 0.7])) == pytest.approx(0.175)


def _monte_carlo(scores: np.ndarray, truth_p: np.ndarray, seed: int, draws: int) -> dict[str, np.ndarray]:
    """Realized metrics over many label draws y ~ Bernoulli(truth_p) for the same scores (vectorised)."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    y = rng.random((draws, len(scores))) < truth_p  # one row per draw
    predicted = scores >= 0.5
    tp = (y & predicted).sum(axis=1)
    fp = (~y & predicted).sum(axis=1)
    fn = (y & ~predicted).sum(axis=1)
    positives = y.sum(axis=1)
    ranks = rankdata(scores)  # ties get their average rank, as in the Mann-Whitney form of ROC-AUC
    rank_sum = (y * ranks).sum(axis=1)
    negatives = len(scores) - positives
    return {
        "f1": 2 * tp / (2 * tp + fp + fn),
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "roc_auc": (rank_sum - positives * (positives + 1) / 2) / (positives * negatives),
    }


def test_cbpe_estimate_is_within_a_computed_tolerance_on_a_calibrated_stream() -> None:
    rng = np.random.default_rng(2026)
    p = rng.beta(2, 3, 4000)  # calibrated: the score is the defect probability
    labels = rng.binomial(1, p)
    est = estimate_performance(p, decision_threshold=0.5)
    realized = realized_performance(
        pd.DataFrame({"score": p, "label": labels}), now=NOW, settings=SETTINGS
    ).model_dump()
    # tolerance: 4 standard deviations of each realized metric over 200 label draws for the same scores
    mc = _monte_carlo(p, p, seed=1, draws=200)
    for metric in ("f1", "precision", "recall", "roc_auc"):
        estimate = getattr(est, metric)
        tolerance = 4 * mc[metric].std()
        assert abs(estimate - realized[metric]) <= tolerance, metric
        # and the estimate is (nearly) unbiased: within 4 standard errors of the Monte Carlo mean
        assert abs(estimate - mc[metric].mean()) <= 4 * mc[metric].std() / np.sqrt(200) + 1e-3, metric


def test_cbpe_misses_when_scores_are_not_calibrated() -> None:
    # the same truth, but the model reports sqrt(p): overconfident, so CBPE's premise fails and the
    # estimated precision is far outside the tolerance; the reference ECE flags it as unreliable.
    rng = np.random.default_rng(2026)
    p = rng.beta(2, 3, 4000)
    labels = rng.binomial(1, p)
    scores = np.sqrt(p)
    est = estimate_performance(
        scores, decision_threshold=0.5, reference_labels=labels.astype(float), reference_scores=scores
    )
    realized = realized_performance(
        pd.DataFrame({"score": scores, "label": labels}), now=NOW, settings=SETTINGS
    )
    tolerance = 4 * _monte_carlo(scores, p, seed=1, draws=200)["precision"].std()
    assert abs(est.precision - realized.precision) > tolerance  # type: ignore[operator]
    assert est.reliable is False
    assert est.reference_calibration_error is not None
    assert est.reference_calibration_error > 0.05
