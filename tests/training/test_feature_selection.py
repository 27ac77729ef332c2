"""The time-aware choice of feature sets (#20): decided on the latest part of the training rows only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from defectops.data import FEATURES, RICH_FEATURES
from defectops.training.selection import SCORABLE_SETS, choose_features


def _table(rows: int, signal: str, seed: int = 0) -> pd.DataFrame:
    """Seeded rows a day apart whose label follows ``signal`` (one column) plus noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.exponential(5.0, rows).round() for name in (*FEATURES, *RICH_FEATURES)})
    frame["fix"] = rng.integers(0, 2, rows).astype(float)
    frame["label"] = (frame[signal] + rng.normal(0, 2.0, rows) > 8).astype("int64")
    frame["churn"] = frame["la"] + frame["ld"]
    start = datetime(2020, 1, 1, tzinfo=UTC)
    frame["time"] = pd.to_datetime([start + timedelta(days=i) for i in range(rows)], utc=True)
    return frame


def test_the_mined_set_is_chosen_when_only_a_richer_feature_carries_the_signal() -> None:
    choice = choose_features(
        _table(800, "src_churn"), kind="logreg", gap=timedelta(days=30), candidates=SCORABLE_SETS
    )
    assert choice.name == "kamei+mined"
    assert choice.features == (*FEATURES, *RICH_FEATURES)
    scores = choice.scores
    assert scores["kamei+mined"] is not None
    assert scores["kamei"] is not None
    assert scores["kamei+mined"] >= scores["kamei"] + 0.005


def test_kamei_is_kept_when_the_richer_features_add_nothing() -> None:
    choice = choose_features(
        _table(800, "la"), kind="logreg", gap=timedelta(days=30), candidates=SCORABLE_SETS
    )
    assert choice.name == "kamei"
    assert choice.features == FEATURES


def test_a_table_without_richer_columns_keeps_kamei_without_fitting() -> None:
    table = _table(200, "la").drop(columns=list(RICH_FEATURES))
    choice = choose_features(table, kind="logreg", gap=timedelta(days=30))
    assert choice.name == "kamei"
    assert choice.scores["kamei"] is None  # nothing was compared
