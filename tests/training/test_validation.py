"""Validation beyond one number (issue #20): bootstrap intervals, group rules and warnings, stability spreads.

Expected values are worked out by hand (arithmetic in the comments) or computed independently with numpy
and scikit-learn on the same documented draws, never with the code under test.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from defectops.errors import InputError
from defectops.training.stability import Spread, matured_quarters
from defectops.training.validation import (
    author_groups,
    bootstrap_metrics,
    component_groups,
    group_errors,
    percentile_interval,
    size_edges,
    size_groups,
    top_level_directory,
)

Y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0], dtype=float)
P = np.array([0.9, 0.8, 0.7, 0.35, 0.3, 0.6, 0.2, 0.5, 0.4, 0.1, 0.45, 0.05])
E = np.array([10, 40, 20, 20, 10, 5, 8, 30, 12, 3, 7, 9], dtype=float)


def test_bootstrap_interval_of_roc_auc_and_recall_matches_an_independent_numpy_bootstrap() -> None:
    # The documented draws: resample b is row b of default_rng(seed).integers(0, n, size=(resamples, n)).
    resamples, seed = 300, 7
    draws = np.random.default_rng(seed).integers(0, len(Y), size=(resamples, len(Y)))
    aucs, recalls = [], []
    for rows in draws:
        y, p = Y[rows], P[rows]
        if 0 < y.sum() < len(y):
            aucs.append(roc_auc_score(y, p))
        if y.sum() > 0:
            recalls.append(float(((p >= 0.5) & (y == 1)).sum() / y.sum()))
    result = bootstrap_metrics(Y, P, E, threshold=0.5, resamples=resamples, seed=seed)
    auc = result.intervals["roc_auc"]
    # The point value by hand: positives 0.9 0.7 0.6 0.4 against 8 negatives (32 pairs). 0.9 beats all 8;
    # 0.7 and 0.6 beat all but 0.8 (7 each); 0.4 beats 0.35 0.3 0.2 0.1 0.05 (5) -> 27/32.
    assert auc.value == pytest.approx(27 / 32)
    assert (auc.lower, auc.upper) == pytest.approx(tuple(np.percentile(aucs, [2.5, 97.5])))
    assert auc.valid == len(aucs)
    recall = result.intervals["recall"]
    # threshold 0.5 flags 0.9 0.8 0.7 0.6 0.5: positives flagged 0.9 0.7 0.6 -> recall 3/4, precision 3/5
    assert recall.value == pytest.approx(0.75)
    assert result.intervals["precision"].value == pytest.approx(0.6)
    assert (recall.lower, recall.upper) == pytest.approx(tuple(np.percentile(recalls, [2.5, 97.5])))
    assert result.n == 12
    assert result.defective == 4


def test_percentile_interval_needs_half_the_resamples_defined() -> None:
    # 4 of 10 defined: undefined. 6 of 10 (1..6): linear quantiles at 2.5% and 97.5% of 6 values are at
    # positions 0.025*5 = 0.125 and 4.875 -> 1.125 and 5.875.
    assert percentile_interval(np.array([np.nan] * 6 + [1, 2, 3, 4.0]), 10, 0.95) == (None, None)
    lower, upper = percentile_interval(np.array([np.nan] * 4 + [1, 2, 3, 4, 5, 6.0]), 10, 0.95)
    assert (lower, upper) == pytest.approx((1.125, 5.875))


def test_author_group_boundary_is_strictly_below() -> None:
    assert author_groups([0, 9, 10, 250], below=10) == [
        "new (exp<10)",
        "new (exp<10)",
        "experienced (exp>=10)",
        "experienced (exp>=10)",
    ]


def test_top_level_directory_rules() -> None:
    assert top_level_directory("src/flask/app.py\nsrc/flask/cli.py\ntests/test_app.py") == "src"
    assert top_level_directory("README.md") == "(root)"
    assert top_level_directory("b/y.py\na/x.py") == "a"  # a tie: alphabetical first
    assert top_level_directory("") == "(root)"
    assert top_level_directory("README.md\nCHANGES.md\ndocs/x.rst") == "(root)"  # 2 root files vs 1
    # keep=2: src (3) and docs (2) kept, tests (1) becomes (other)
    paths = ["src/a.py", "src/b.py", "src/c.py", "docs/x", "docs/y", "tests/t.py"]
    assert component_groups(paths, keep=2) == ["src", "src", "src", "docs", "docs", "(other)"]


def test_size_terciles_by_hand() -> None:
    # 10 values 1..10: linear quantile positions 9/3 = 3 and 6 -> values 4 and 7.
    churn = np.arange(1, 11, dtype=float)
    assert size_edges(churn) == (4.0, 7.0)
    groups = size_groups(churn)
    assert groups[:4] == ["small (0–4 changed lines)"] * 4
    assert groups[4:7] == ["medium (5–7 changed lines)"] * 3
    assert groups[7:] == ["large (8+ changed lines)"] * 3


def test_size_groups_name_their_unit_and_range_by_hand() -> None:
    # 0, 0, 1, 1, 2, 9: positions 5/3 and 10/3 -> 0 + 2/3 * (1 - 0) = 0.667 and 1 + 1/3 * (2 - 1) = 1.333;
    # whole-number churn: small is 0 (<= 0.667), medium 1 (<= 1.333), large 2 and more
    assert size_groups([0, 0, 1, 1, 2, 9]) == [
        "small (0 changed lines)",
        "small (0 changed lines)",
        "medium (1 changed line)",
        "medium (1 changed line)",
        "large (2+ changed lines)",
        "large (2+ changed lines)",
    ]
    # an external effort column with fractions: positions 3/3 and 6/3 fall on 1.5 and 3, given as they are
    assert size_groups([0.5, 1.5, 3.0, 6.0]) == [
        "small (up to 1.5 changed lines)",
        "small (up to 1.5 changed lines)",
        "medium (over 1.5, up to 3 changed lines)",
        "large (over 3 changed lines)",
    ]


def _constructed(balanced: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Group A: 20 defect-inducing and 60 clean; group B: 30 and 90. Unbalanced: A's defects are all flagged
    (recall 1), B's none (recall 0), nobody clean flagged. Balanced: half of each group's defects and a tenth
    of its clean changes flagged in both groups."""
    y = np.r_[np.ones(20), np.zeros(60), np.ones(30), np.zeros(90)]
    if balanced:
        flagged = np.r_[np.arange(20) < 10, np.arange(60) < 6, np.arange(30) < 15, np.arange(90) < 9]
    else:
        flagged = np.r_[np.ones(20), np.zeros(60), np.zeros(30), np.zeros(90)].astype(bool)
    score = np.where(flagged, 0.9, 0.1)
    groups = ["A"] * 80 + ["B"] * 120
    return y, score, groups


def test_warning_fires_on_a_recall_gap_and_only_for_the_smaller_of_two_groups() -> None:
    y, score, groups = _constructed(balanced=False)
    found = {g.group: g for g in group_errors(y, score, 0.5, {"author": groups}, resamples=500)}
    a, b = found["A"], found["B"]
    # A: recall 20/20 = 1 vs the rest (B) 0/30 = 0; every resample keeps that gap: interval [1, 1].
    assert (a.recall, a.recall_rest, a.recall_diff.value) == (1.0, 0.0, 1.0)
    assert (a.recall_diff.lower, a.recall_diff.upper) == (1.0, 1.0)
    assert a.warning is not None
    assert "recall higher than the rest by 1.00" in a.warning
    assert "false-positive" not in a.warning  # FPR 0 vs 0
    assert b.warning is None  # the mirror image of A's warning


def test_no_warning_when_groups_are_balanced() -> None:
    y, score, groups = _constructed(balanced=True)
    found = group_errors(y, score, 0.5, {"author": groups}, resamples=500)
    # Both groups: recall 1/2, FPR 1/10: the differences are 0.
    assert [(g.recall, g.fpr, g.recall_diff.value) for g in found] == [(0.5, 0.1, 0.0), (0.5, 0.1, 0.0)]
    assert all(g.warning is None for g in found)


def test_no_recall_warning_on_a_single_defect() -> None:
    # Group C: 30 clean + 1 flagged defect (recall 1); rest: 60 clean + 10 unflagged defects (recall 0).
    y = np.r_[np.zeros(30), 1.0, np.zeros(60), np.ones(10)]
    score = np.r_[np.full(30, 0.1), 0.9, np.full(70, 0.1)]
    groups = ["C"] * 31 + ["D"] * 70
    c = next(g for g in group_errors(y, score, 0.5, {"x": groups}, resamples=300) if g.group == "C")
    assert c.recall == 1.0
    assert c.warning is None  # one defect is fewer than min_class = 5


def test_group_errors_refuses_mismatched_groups() -> None:
    with pytest.raises(InputError):
        group_errors(Y, P, 0.5, {"x": ["a"] * 3})


def test_spread_by_hand() -> None:
    spread = Spread.of([0.7, 0.8, float("nan"), 0.6])
    assert spread is not None
    # finite 0.7 0.8 0.6: mean 0.7, sample std sqrt((0 + 0.01 + 0.01) / 2) = 0.1; steps 0.1 and 0.2 -> 0.15
    assert (spread.minimum, spread.maximum, spread.count) == pytest.approx((0.6, 0.8, 3))
    assert spread.std == pytest.approx(0.1)
    assert spread.mean_step == pytest.approx(0.15)
    assert Spread.of([]) is None


def test_matured_quarters_end_a_gap_before_now() -> None:
    times = pd.Series(pd.to_datetime(["2024-01-15", "2024-05-01", "2024-08-01", "2024-12-31"], utc=True))
    now = datetime(2025, 3, 1, tzinfo=UTC)
    # gap 30 days: settled until 2025-01-30; Q4 2024 ends 2025-01-01, so all four quarters count
    quarters = matured_quarters(times, now=now, gap=timedelta(days=30), count=10)
    assert [f"{s:%Y-%m-%d}" for s, _ in quarters] == ["2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01"]
    # gap 90 days: settled until 2024-12-01, Q4 is not over by then; count 2 keeps the latest two
    quarters = matured_quarters(times, now=now, gap=timedelta(days=90), count=2)
    assert [(f"{s:%m-%d}", f"{e:%m-%d}") for s, e in quarters] == [("04-01", "07-01"), ("07-01", "10-01")]


def test_interval_json_has_no_nan() -> None:
    result = bootstrap_metrics([1, 1, 1], [0.2, 0.5, 0.9], [1, 2, 3], threshold=0.5, resamples=100)
    document = result.as_dict()
    assert document["metrics"]["roc_auc"]["value"] is None  # one class: undefined, not NaN
    values = [v for m in document["metrics"].values() for v in m.values()]
    assert not any(isinstance(v, float) and math.isnan(v) for v in values)


def test_no_warning_on_a_difference_below_the_minimum_effect() -> None:
    # Group E: 300 clean, none flagged (FPR 0); rest: 300 clean, 6 flagged (FPR 0.02); 10 unflagged defects in
    # each. The interval of -0.02 excludes 0 (E never has a false positive), but 0.02 < 0.05: no warning.
    y = np.r_[np.zeros(300), np.ones(10), np.zeros(300), np.ones(10)]
    score = np.r_[np.full(310, 0.1), np.full(6, 0.9), np.full(304, 0.1)]
    groups = ["E"] * 310 + ["F"] * 310
    found = {g.group: g for g in group_errors(y, score, 0.5, {"x": groups}, resamples=300)}
    assert found["E"].fpr_diff.value == pytest.approx(-0.02)
    assert found["E"].fpr_diff.excludes_zero()
    assert found["E"].warning is None


def test_held_out_bounds_are_logged_beside_each_metric() -> None:
    """A window the scores separate perfectly: every resample holding both classes has ROC-AUC 1, so the
    interval is [1, 1]; a window with no labels logs no bounds."""
    from defectops.data import EFFORT, LABEL
    from defectops.training import METRIC_KEYS
    from defectops.training.candidate import held_out_bounds

    window = pd.DataFrame({LABEL: [0, 0, 0, 0, 0, 0, 1, 1, 1, 1], EFFORT: [10.0] * 10})
    scores = np.array([0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.7, 0.8, 0.9, 0.95])
    bounds = held_out_bounds(window, scores, threshold=0.5)
    assert bounds["roc_auc_ci95_low"] == bounds["roc_auc_ci95_high"] == 1.0
    assert bounds["f1_ci95_low"] == bounds["f1_ci95_high"] == 1.0
    assert set(bounds) <= {f"{m}_ci95_{side}" for m in METRIC_KEYS for side in ("low", "high")}
    assert held_out_bounds(window.drop(columns=[LABEL]), scores, threshold=0.5) == {}
