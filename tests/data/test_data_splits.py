"""Splits never let a model learn from labels it could not have had: train time + gap <= first test time."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from defectops.data.splits import (
    kamei_monthly,
    ordered_split,
    random_split,
    rolling_origin,
    time_order,
    time_split,
)
from defectops.errors import InputError


def days(*offsets: float) -> pd.Series:
    """Times at the given day offsets from 2020-01-01 UTC."""
    base = pd.Timestamp("2020-01-01", tz="UTC")
    return pd.Series([base + pd.Timedelta(days=d) for d in offsets])


def test_time_split_holds_out_the_latest_rows_and_drops_the_gap() -> None:
    times = days(*range(10))  # one change a day, days 0..9
    # 30% of 10 = 3 test rows: days 7, 8, 9; gap 2 days: train needs day + 2 <= 7 -> days 0..5; day 6 dropped
    split = time_split(times, test_fraction=0.3, gap=timedelta(days=2))
    assert list(split.test) == [7, 8, 9]
    assert list(split.train) == [0, 1, 2, 3, 4, 5]
    assert split.info["gap"] == "2 days"


def test_time_split_without_gap_keeps_ties_and_sorts_stably() -> None:
    # unsorted input; day 2 appears twice (rows 1 and 3); 40% of 5 = 2 test rows
    times = days(3, 2, 0, 2, 1)
    assert list(time_order(times)) == [2, 4, 1, 3, 0]
    split = time_split(times, test_fraction=0.4)
    # latest two by (time, input order): row 3 (day 2, after row 1) and row 0 (day 3)
    assert list(split.test) == [3, 0]
    # train: time <= day 2 -> rows 2, 4, 1 (row 1 shares the first test time; ties are not the future)
    assert list(split.train) == [2, 4, 1]


def test_ordered_split_is_the_published_file_order_protocol() -> None:
    split = ordered_split(10, test_fraction=0.2)
    assert list(split.train) == list(range(8))
    assert list(split.test) == [8, 9]


def test_rolling_origin_expanding_and_sliding() -> None:
    times = days(*range(10))
    # test part = last 40% = rows 6..9, cut into 2 windows at linspace(6, 10, 3) = 6, 8, 10
    folds = rolling_origin(times, n_folds=2, test_fraction=0.4)
    assert [list(f.test) for f in folds] == [[6, 7], [8, 9]]
    assert [list(f.train) for f in folds] == [list(range(6)), list(range(8))]
    # gap 2 days: fold 1 trains on day + 2 <= 6 -> 0..4; fold 2 on day + 2 <= 8 -> 0..6
    gapped = rolling_origin(times, n_folds=2, test_fraction=0.4, gap=timedelta(days=2))
    assert [list(f.train) for f in gapped] == [list(range(5)), list(range(7))]
    # sliding window of 3 rows: fold 2 trains on rows 5, 6, 7
    sliding = rolling_origin(times, n_folds=2, test_fraction=0.4, window=3)
    assert list(sliding[1].train) == [5, 6, 7]


def test_kamei_monthly_protocol() -> None:
    # one change on the 15th of each month, Jan..Aug 2020 -> calendar months 0..7
    times = pd.Series(pd.date_range("2020-01-15", periods=8, freq="MS", tz="UTC") + pd.Timedelta(days=14))
    folds = kamei_monthly(times)
    # fold i trains on months i, i+1 and tests on i+4, i+5; the test window must end by month 7: i = 0, 1, 2
    assert [(list(f.train), list(f.test)) for f in folds] == [
        ([0, 1], [4, 5]),
        ([1, 2], [5, 6]),
        ([2, 3], [6, 7]),
    ]


def test_kamei_months_count_even_when_empty() -> None:
    # changes in Jan, Feb, May, Jun 2020 (Mar and Apr empty): months 0, 1, 4, 5
    times = pd.Series(pd.to_datetime(["2020-01-03", "2020-02-03", "2020-05-03", "2020-06-03"], utc=True))
    folds = kamei_monthly(times)
    assert [(list(f.train), list(f.test)) for f in folds] == [([0, 1], [2, 3])]


def test_random_split_is_seeded_and_disjoint() -> None:
    a, b = random_split(20, test_fraction=0.25, seed=3), random_split(20, test_fraction=0.25, seed=3)
    assert list(a.test) == list(b.test)
    assert len(a.test) == 5
    assert sorted([*a.train, *a.test]) == list(range(20))


@pytest.mark.parametrize("gap_days", [0, 1, 30])
def test_no_split_leaks_future_labels(gap_days: int) -> None:
    rng = np.random.default_rng(gap_days)
    times = days(*np.sort(rng.uniform(0, 400, 300)).round(1))
    shuffled = times.sample(frac=1.0, random_state=1).reset_index(drop=True)
    gap = timedelta(days=gap_days)
    splits = [
        time_split(shuffled, test_fraction=0.25, gap=gap),
        *rolling_origin(shuffled, n_folds=4, test_fraction=0.5, gap=gap),
        *kamei_monthly(shuffled),
    ]
    for split in splits:
        assert len(split.train) > 0
        latest_train = shuffled.iloc[split.train].max()
        earliest_test = shuffled.iloc[split.test].min()
        minimum_gap = (
            gap if not split.name.startswith("kamei") else timedelta(days=59)
        )  # two skipped months are >= 59 days
        assert latest_train + minimum_gap <= earliest_test, split.name
        assert not set(split.train) & set(split.test)


def test_invalid_arguments() -> None:
    with pytest.raises(InputError):
        time_split(days(0, 1, 2), test_fraction=1.5)
    with pytest.raises(InputError):
        time_split(days(0, 1, 2), gap=timedelta(days=-1))
    with pytest.raises(InputError):
        rolling_origin(days(0, 1), n_folds=5)
