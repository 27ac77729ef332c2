"""The default's time-aware choices (#20): relative churn, the log-linear + boosted blend, the recency half-life."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from defectops.data import FEATURES
from defectops.errors import InputError
from defectops.training import choose_model, train, with_relative_churn
from defectops.training.choice import RELATIVE_CHURN, blend_raw
from defectops.training.models import BlendJIT, LightGBMJIT, LogisticJIT


def _table(rows: int, seed: int = 0) -> pd.DataFrame:
    """Seeded Kamei-metric rows a day apart (no label yet)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.exponential(5.0, rows).round() + 1 for name in FEATURES})
    frame["fix"] = rng.integers(0, 2, rows).astype(float)
    frame["churn"] = frame["la"] + frame["ld"]
    start = datetime(2020, 1, 1, tzinfo=UTC)
    frame["time"] = pd.to_datetime([start + timedelta(days=i) for i in range(rows)], utc=True)
    return frame


def test_relative_churn_ratios_by_hand() -> None:
    table = pd.DataFrame(
        {
            "la": [30.0, 5.0],
            "ld": [10.0, 0.0],
            "lt": [120.0, 0.0],
            "nf": [4.0, 0.0],
            "nuc": [8.0, 0.0],
            "ndev": [2.0, 0.0],
            "age": [20.0, 3.0],
        }
    )
    table.attrs["features"] = ["la"]
    out = with_relative_churn(table)
    assert list(out.columns[-len(RELATIVE_CHURN) :]) == list(RELATIVE_CHURN)
    # row 0: churn 40; la/lt 30/120, ld/lt 10/120, lt/nf 120/4, nuc/nf 8/4, la/nf 30/4, ld/nf 10/4,
    # churn/nf 40/4, ndev/nf 2/4, age/nf 20/4, la/ld 30/10
    assert out.loc[0, list(RELATIVE_CHURN)].tolist() == pytest.approx(
        [0.25, 1 / 12, 30.0, 2.0, 7.5, 2.5, 10.0, 0.5, 5.0, 3.0]
    )
    # row 1: every denominator is 0 and counts as 1, so each ratio is its numerator (churn 5)
    assert out.loc[1, list(RELATIVE_CHURN)].tolist() == [5.0, 0.0, 0.0, 0.0, 5.0, 0.0, 5.0, 0.0, 3.0, 5.0]
    assert out.attrs["features"] == ["la"]  # the model inputs are the selection's to change
    assert "la_per_lt" not in table.columns  # a copy
    lacking = table.drop(columns=["nuc"])
    assert with_relative_churn(lacking) is lacking


def test_blend_raw_by_hand() -> None:
    # 0.75 * [2, -1] + 0.25 * [0, 3] = [1.5, 0.0]
    assert blend_raw([2.0, -1.0], [0.0, 3.0], 0.25).tolist() == [1.5, 0.0]
    assert blend_raw([2.0], [4.0], 0.0).tolist() == [2.0]
    assert blend_raw([2.0], [4.0], 1.0).tolist() == [4.0]


def test_the_blend_is_the_weighted_sum_of_its_parts_raw_log_odds() -> None:
    table = _table(400)
    table["label"] = (table["la"] + table["nf"] > 12).astype("int64")
    blend = BlendJIT(n_estimators=40, linear_weight=0.25, cv_folds=0).fit(table, table["label"])
    inputs = blend._inputs(table)
    boosted, linear = blend.boosted_._raw(inputs), blend.linear_._raw(inputs)
    assert np.allclose(blend._raw(inputs), 0.75 * boosted + 0.25 * linear)
    # each part is the model of its own kind fitted on the same weights (balanced, one-year recency)
    alone = LightGBMJIT(n_estimators=40, cv_folds=0).fit(table, table["label"])
    assert np.allclose(boosted, alone._raw(inputs))
    logistic = LogisticJIT(half_life_days=365.0, cv_folds=0).fit(table, table["label"])
    assert np.allclose(linear, logistic._raw(inputs))
    # explanations: per feature 0.75 * TreeSHAP + 0.25 * coef * z, exactly
    terms = blend._terms(inputs.take(np.array([0])))[0][1]
    b_terms = blend.boosted_._terms(inputs.take(np.array([0])))[0][1]
    l_terms = blend.linear_._terms(inputs.take(np.array([0])))[0][1]
    for (name, _, t), (_, _, bt), (_, _, lt) in zip(terms, b_terms, l_terms, strict=True):
        assert t == pytest.approx(0.75 * bt + 0.25 * lt), name


def test_a_linear_weight_outside_zero_to_one_is_refused() -> None:
    table = _table(100)
    table["label"] = (table["la"] > 5).astype("int64")
    with pytest.raises(InputError, match="linear_weight"):
        BlendJIT(linear_weight=1.5, cv_folds=0).fit(table, table["label"])


def test_a_smooth_monotone_risk_chooses_the_log_linear_side() -> None:
    table = _table(900, seed=1)
    rng = np.random.default_rng(2)
    logit = 1.5 * np.log1p(table["la"]) + 1.0 * np.log1p(table["nf"]) - 5.0
    table["label"] = (rng.random(len(table)) < 1 / (1 + np.exp(-logit))).astype("int64")
    choice = choose_model(table, features=FEATURES, gap=timedelta(days=10), half_lives=(365.0,))
    assert choice.kind in ("blend", "logreg")
    assert choice.scores[choice.name] >= choice.scores["lightgbm, half-life 365"] + 0.002
    assert set(choice.scores) == {
        "lightgbm, half-life 365",
        "blend w=0.25, half-life 365",
        "blend w=0.5, half-life 365",
        "blend w=0.75, half-life 365",
        "logreg, half-life 365",
    }


def test_an_interaction_keeps_lightgbm() -> None:
    table = _table(900, seed=3)
    table["label"] = ((table["la"] > 5) ^ (table["nf"] > 5)).astype("int64")
    choice = choose_model(table, features=FEATURES, gap=timedelta(days=10), half_lives=(365.0,))
    assert choice.kind == "lightgbm"
    assert choice.params == {"half_life_days": 365.0}
    assert choice.scores["lightgbm, half-life 365"] > choice.scores["logreg, half-life 365"] + 0.1


def test_a_drifting_risk_chooses_a_shorter_half_life() -> None:
    # the risky metric changes on day 700: only recent changes tell the later folds what matters
    table = _table(1200, seed=4)
    early = np.arange(len(table)) < 700
    table["label"] = np.where(early, table["la"] > 6, table["nf"] > 6).astype("int64")
    choice = choose_model(
        table, features=FEATURES, gap=timedelta(0), weights=(0.0,), half_lives=(365.0, 30.0)
    )
    assert choice.name == "lightgbm, half-life 30"
    assert choice.params == {"half_life_days": 30.0}


def test_the_default_is_kept_unless_a_candidate_gains_enough() -> None:
    table = _table(900, seed=1)
    table["label"] = (np.log1p(table["la"]) + np.log1p(table["nf"]) > 3.6).astype("int64")
    choice = choose_model(table, features=FEATURES, gap=timedelta(days=10), half_lives=(365.0,), min_gain=1.0)
    assert choice.name == "lightgbm, half-life 365"
    assert len(choice.scores) == 5  # every candidate was still measured


def test_train_chooses_inside_the_training_part_only() -> None:
    table = _table(500, seed=6)
    table["label"] = (table["la"] / np.maximum(table["lt"], 1) > 1.2).astype("int64")
    table.attrs["features"] = list(FEATURES)
    first = train(table, budget_seconds=0, gap=timedelta(days=10)).as_dict()
    assert first["feature_set"]["chosen"] == "kamei+relative"
    assert "la_per_lt" in first["features"]
    assert first["model_choice"]["kind"] == first["model"]
    # flipping every label of the test part changes the test scores, never what was chosen
    flipped = table.copy()
    flipped.attrs = dict(table.attrs)
    test_rows = int(first["split"]["test_rows"])
    flipped.loc[flipped.index[-test_rows:], "label"] = 1 - flipped["label"].iloc[-test_rows:]
    second = train(flipped, budget_seconds=0, gap=timedelta(days=10)).as_dict()
    assert second["model_choice"] == first["model_choice"]
    assert second["feature_set"] == first["feature_set"]
    assert second["roc_auc"] != first["roc_auc"]
    # a model named explicitly is trained as asked, without choices
    assert (
        "model_choice" not in train(table, kind="logreg", budget_seconds=0, gap=timedelta(days=10)).as_dict()
    )


def test_a_choice_reads_as_one_line_beside_the_default() -> None:
    from defectops.training import ModelChoice

    scores = {"lightgbm, half-life 365": 0.8, "blend w=0.25, half-life 365": 0.8125}
    blend = ModelChoice("blend w=0.25, half-life 365", "blend", {}, scores, "mean over 3 folds")
    assert blend.describe() == (
        "blend w=0.25, half-life 365, validation ROC-AUC 0.812 against 0.800 for the default "
        "(lightgbm, half-life 365); mean over 3 folds"
    )
    # the default's own half-life is not read as the chosen model's (it said "blend w=0.5, no decay,
    # validation ROC-AUC 0.809 against 0.790 for lightgbm, half-life 365 (mean ...)")
    no_decay = {"lightgbm, half-life 365": 0.79, "blend w=0.5, no decay": 0.809}
    chosen = ModelChoice("blend w=0.5, no decay", "blend", {}, no_decay, "mean over 3 folds")
    assert chosen.describe() == (
        "blend w=0.5, no decay, validation ROC-AUC 0.809 against 0.790 for the default "
        "(lightgbm, half-life 365); mean over 3 folds"
    )
    kept = ModelChoice("lightgbm, half-life 365", "lightgbm", {}, scores, "mean over 3 folds")
    assert kept.describe() == "lightgbm, half-life 365, validation ROC-AUC 0.800; mean over 3 folds"
    unscored = ModelChoice("lightgbm, half-life 365", "lightgbm", {}, {}, "too few labels")
    assert unscored.describe() == "lightgbm, half-life 365: too few labels"
