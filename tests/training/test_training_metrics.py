"""Every metric against a value worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from defectops.errors import InputError
from defectops.training import metrics as m

# The running example: five changes.
#   index:   0    1    2    3    4
#   label:   1    0    1    0    0
#   score:  0.9  0.8  0.4  0.3  0.1
#   churn:  10   40   20   20   10    (total effort 100)
Y = [1, 0, 1, 0, 0]
S = [0.9, 0.8, 0.4, 0.3, 0.1]
E = [10, 40, 20, 20, 10]


def test_roc_auc_counts_correctly_ordered_pairs() -> None:
    # positives {0.9, 0.4}, negatives {0.8, 0.3, 0.1}: 0.9 beats all 3, 0.4 beats 0.3 and 0.1 -> 5 of 6 pairs
    assert m.roc_auc(Y, S) == pytest.approx(5 / 6)


def test_roc_auc_ties_count_half_and_one_class_is_nan() -> None:
    # one pair, tied: 1/2
    assert m.roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    # positives {0.7, 0.2}, negative {0.2}: 0.7 > 0.2 (1) + tie (0.5) = 1.5 of 2 pairs
    assert m.roc_auc([1, 1, 0], [0.7, 0.2, 0.2]) == pytest.approx(0.75)
    assert math.isnan(m.roc_auc([1, 1], [0.2, 0.3]))


def test_pr_auc_is_average_precision() -> None:
    # ranked labels 1,0,1,0,0: recall steps at rank 1 (P=1/1) and rank 3 (P=2/3), each step 1/2:
    # AP = 0.5 * 1 + 0.5 * 2/3 = 0.8333
    assert m.pr_auc(Y, S) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # a tie block counts once at its end: scores (0.9, 0.9, 0.1) labels (1, 0, 1):
    # threshold 0.9 -> P = 1/2, R = 1/2; threshold 0.1 -> P = 2/3, R = 1 -> AP = 0.5*0.5 + 0.5*2/3 = 0.5833
    assert m.pr_auc([1, 0, 1], [0.9, 0.9, 0.1]) == pytest.approx(0.25 + 1 / 3)


def test_threshold_metrics_at_half() -> None:
    # predicted positive: scores >= 0.5 -> indices 0 (defect) and 1 (clean): TP=1 FP=1 FN=1 TN=2
    c = m.Confusion.at(Y, S, 0.5)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 1, 1, 2)
    # F1 = 2TP / (2TP + FP + FN) = 2 / 4
    assert m.f1(Y, S, 0.5) == pytest.approx(0.5)
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2 - 1) / sqrt(2*2*3*3) = 1/6
    assert m.mcc(Y, S, 0.5) == pytest.approx(1 / 6)
    # G-mean = sqrt(recall * specificity) = sqrt(1/2 * 2/3) = sqrt(1/3)
    assert m.g_mean(Y, S, 0.5) == pytest.approx(math.sqrt(1 / 3))


def test_brier_score() -> None:
    # (0.9-1)^2 + 0.8^2 + (0.4-1)^2 + 0.3^2 + 0.1^2 = 0.01 + 0.64 + 0.36 + 0.09 + 0.01 = 1.11; / 5 = 0.222
    assert m.brier(Y, S) == pytest.approx(0.222)
    with pytest.raises(InputError):
        m.brier([1], [1.5])


def test_recall_at_20_percent_effort() -> None:
    # inspected by score: 0 (10, defect), 1 (40), 2 (20, defect), ...; cumulative effort 10, 50, ...
    # budget 20% of 100 = 20: only change 0 fits (change 1 would cross it) -> 1 of 2 defects = 0.5
    assert m.recall_at_effort(Y, S, E, 0.2) == pytest.approx(0.5)
    # budget 80: cumulative 10, 50, 70 fit, 90 does not -> both defects found = 1.0
    assert m.recall_at_effort(Y, S, E, 0.8) == pytest.approx(1.0)


def test_effort_at_20_percent_recall() -> None:
    # 20% of 2 defects = 0.4 defects: reached by the first change inspected (effort 10 of 100) -> 0.1
    assert m.effort_at_recall(Y, S, E, 0.2) == pytest.approx(0.1)
    # 60% recall needs both defects (1 of 2 is 50%): cumulative effort 10 + 40 + 20 = 70 -> 0.7
    assert m.effort_at_recall(Y, S, E, 0.6) == pytest.approx(0.7)


def test_popt_normalised_between_optimal_and_worst() -> None:
    # model order 0,1,2,3,4: x = .1 .5 .7 .9 1, y = .5 .5 1 1 1
    #   area = .1*.25 + .4*.5 + .2*.75 + .2*1 + .1*1 = .025 + .2 + .15 + .2 + .1 = .675
    # optimal (density desc: 0 (1/10), 2 (1/20), then clean by effort asc 4, 3, 1): x = .1 .3 .4 .6 1,
    #   y = .5 1 1 1 1 -> area = .025 + .2*.75 + .1 + .2 + .4 = .875
    # worst (clean first, bigger first: 1, 3, 4, then 2, 0): x = .4 .6 .7 .9 1, y = 0 0 0 .5 1
    #   area = .2*.25 + .1*.75 = .125
    # Popt = 1 - (.875 - .675) / (.875 - .125) = 1 - .2/.75 = 0.7333
    assert m.popt(Y, S, E) == pytest.approx(1 - 0.2 / 0.75)


def test_ifa_counts_clean_changes_before_the_first_defect() -> None:
    assert m.ifa(Y, S) == 0  # the top-ranked change is defect-inducing
    # ranked: 0.9 (clean), 0.8 (clean), 0.5 (defect) -> 2 false alarms first
    assert m.ifa([0, 0, 1, 0], [0.9, 0.8, 0.5, 0.1]) == 2
    assert math.isnan(m.ifa([0, 0], [0.1, 0.2]))


def test_ties_are_broken_by_smaller_effort_then_input_order() -> None:
    # equal scores: the change with effort 5 is inspected before the one with effort 50
    assert list(m.inspection_order([0.5, 0.5, 0.9], [50, 5, 1])) == [2, 1, 0]
    assert list(m.inspection_order([0.5, 0.5], [5, 5])) == [0, 1]


def test_density_ranking_and_the_full_report() -> None:
    # density = p / max(churn, 1) = .09, .02, .02, .015, .01; the tie (.02) goes to effort 20 (index 2)
    # order 0, 2, 1, 3, 4 = the optimal order above, so Popt = 1 and Recall@20% = 0.5 (only change 0 fits)
    report = m.evaluate_predictions(Y, S, E, threshold=0.5)
    assert report.ranking == "density"
    assert report.popt == pytest.approx(1.0)
    assert report.recall_at_20_effort == pytest.approx(0.5)
    assert report.effort_at_20_recall == pytest.approx(0.1)
    assert report.ifa == 0
    assert report.roc_auc == pytest.approx(5 / 6)
    assert (report.n, report.n_defective, report.n_clean) == (5, 2, 3)
    assert report.total_effort == 100
    assert set(report.metrics()) == set(m.METRIC_KEYS)
    # ranking by risk alone reproduces the score-ordered values above
    risk = m.evaluate_predictions(Y, S, E, threshold=0.5, ranking="risk")
    assert risk.popt == pytest.approx(1 - 0.2 / 0.75)


def test_zero_effort_changes_cost_nothing() -> None:
    # a defect with zero churn inspected first is found for free: 1 of 2 defects at 0% effort
    assert m.recall_at_effort([1, 1, 0], [0.9, 0.1, 0.5], [0, 10, 10], 0.2) == pytest.approx(0.5)
    assert m.effort_at_recall([1, 1, 0], [0.9, 0.1, 0.5], [0, 10, 10], 0.5) == pytest.approx(0.0)


def test_custom_effort_score_and_mean_over_folds() -> None:
    # an LT-style ranking that inverts the scores: order 4,3,2,1,0 -> effort 10,20,20,40,10
    # budget 20: change 4 (10) fits, change 3 would make 30 -> no defect found -> 0.0
    report = m.evaluate_predictions(Y, S, E, effort_score=[-s for s in S])
    assert report.ranking == "custom"
    assert report.recall_at_20_effort == pytest.approx(0.0)
    mean = m.mean_reports([report, m.evaluate_predictions(Y, S, E)])
    assert mean["recall_at_20_effort"] == pytest.approx(0.25)  # (0.0 + 0.5) / 2
    assert mean["n"] == 10
    assert mean["folds"] == 2


def test_agrees_with_scikit_learn_on_random_data() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300), 2)  # rounding creates ties
    assert m.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert m.pr_auc(y, s) == pytest.approx(average_precision_score(y, s))


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(InputError):
        m.roc_auc([1, 0, 2], [0.1, 0.2, 0.3])
    with pytest.raises(InputError):
        m.recall_at_effort([1, 0], [0.1, 0.2], [-1, 2])
    with pytest.raises(InputError):
        m.roc_auc([1, 0], [0.1])
