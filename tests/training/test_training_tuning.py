"""Tuning and evaluation: folds stay inside the training part, the budget holds, the protocols run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from defectops.errors import InputError
from defectops.training.evaluate import evaluate, fit_model, score_model, train
from defectops.training.metrics import METRIC_KEYS
from defectops.training.tuning import tune, validation_folds


def test_validation_folds_are_time_ordered_and_horizon_sized(table: pd.DataFrame) -> None:
    folds = validation_folds(table["time"], n_folds=3, gap=timedelta(days=2))
    # 3 windows over the last 60% of 600 rows: rows 240..359, 360..479, 480..599 (120 rows = 20% each)
    assert [(int(f.test[0]), int(f.test[-1])) for f in folds] == [(240, 359), (360, 479), (480, 599)]
    for fold in folds:
        # one change every 6 hours: train time + 2 days <= window start -> last train row = start - 8
        assert int(fold.train[-1]) == int(fold.test[0]) - 8
        assert table["time"].iloc[fold.train].max() + timedelta(days=2) <= table["time"].iloc[fold.test].min()


def test_tuning_tries_the_defaults_first_and_never_does_worse_on_validation(table: pd.DataFrame) -> None:
    result = tune("logreg", table, table["label"], table["time"], budget_seconds=60, max_trials=4, seed=1)
    assert result.n_trials == 4
    assert result.best_score >= result.default_score
    assert result.ranked[0][0] == result.best_score
    assert result.history[0][0] == 0  # trial 0 = the model's defaults
    assert "C" in result.best_params or result.best_score == result.default_score


def test_budget_zero_scores_only_the_defaults(table: pd.DataFrame) -> None:
    result = tune(
        "lightgbm", table, table["label"], table["time"], budget_seconds=0, fixed_params={"n_estimators": 20}
    )
    assert result.n_trials == 1
    assert result.best_params == {"n_estimators": 20}


def test_the_budget_stops_the_search_before_it_would_overrun(table: pd.DataFrame) -> None:
    # a fake clock that advances 10 "seconds" per read: start 0; trial 0 runs 10..20 (10 s), then the
    # check reads 30 -> 20 s left >= 10 s: go on; trial 1 runs 40..50, check reads 60 -> -10 s left: stop
    ticks: Iterator[float] = iter(np.arange(0, 10_000, 10.0))
    result = tune(
        "logreg",
        table,
        table["label"],
        table["time"],
        budget_seconds=50,
        seed=0,
        clock=lambda: float(next(ticks)),
    )
    assert result.n_trials == 2


def test_tuning_and_fitting_see_only_the_rows_they_are_given(table: pd.DataFrame) -> None:
    # poison the later rows: if any of them reached tuning or fitting, the result would change
    poisoned = table.copy()
    poisoned.loc[poisoned.index[400:], "label"] = 1 - poisoned["label"].iloc[400:]
    clean_part, poisoned_part = table.iloc[:400], poisoned.iloc[:400]
    tuned = [
        tune("logreg", part, part["label"], part["time"], budget_seconds=600, max_trials=3, seed=0)
        for part in (clean_part, poisoned_part)
    ]
    assert tuned[0].ranked == tuned[1].ranked
    fitted = [fit_model(part, kind="logreg", seed=0) for part in (clean_part, poisoned_part)]
    assert np.allclose(fitted[0].model.predict_proba(table)[:, 1], fitted[1].model.predict_proba(table)[:, 1])


def test_train_holds_out_the_latest_changes_with_a_gap(table: pd.DataFrame) -> None:
    result = train(table, kind="logreg", budget_seconds=0, gap=timedelta(days=5), test_fraction=0.2)
    split = result.fold.split
    assert list(split.test) == list(range(480, 600))
    # test = rows 480..599 (day 120 on); train needs time + 5 days <= day 120 -> day 115 = row 460
    assert int(split.train[-1]) == 460
    document = result.as_dict()
    assert set(METRIC_KEYS) <= set(document)
    assert document["counts"]["n"] == 120
    assert document["refitted_on_all_rows"] is False
    refitted = train(table, kind="logreg", budget_seconds=0, refit=True)
    assert refitted.fitted.train_rows == 600


@pytest.mark.parametrize("protocol", ["time", "rolling", "kamei", "random"])
def test_every_protocol_runs(protocol: str, table: pd.DataFrame) -> None:
    frame = table
    if protocol == "kamei":  # spread the 600 changes over 10 months so that monthly folds exist
        frame = table.assign(time=table["time"].iloc[0] + (table["time"] - table["time"].iloc[0]) * 2)
    result = evaluate(frame, protocol=protocol, kind="logreg", n_folds=2)
    document = result.as_dict()
    assert document["split"] == protocol
    assert set(METRIC_KEYS) <= set(document)
    assert document["n_folds"] == len(result.folds) >= 1
    assert 0.5 < document["roc_auc"] <= 1.0
    assert sum(f["counts"]["n"] for f in document["folds"]) == document["counts"]["n"]


def test_score_model_uses_the_models_threshold(table: pd.DataFrame) -> None:
    fitted = fit_model(table.iloc[:450], kind="logreg")
    report = score_model(fitted.model, table.iloc[450:])
    assert report.threshold == fitted.model.threshold_
    assert report.tp + report.fp == int(fitted.model.predict(table.iloc[450:]).sum())


def test_unusable_inputs(table: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="text model needs"):
        fit_model(table.drop(columns=["paths"]), kind="text")
    with pytest.raises(InputError, match="unknown split"):
        evaluate(table, protocol="shuffle")
    one_class = table.assign(label=0)
    with pytest.raises(InputError):
        train(one_class, kind="logreg", budget_seconds=0)
