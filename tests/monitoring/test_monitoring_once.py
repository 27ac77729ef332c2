"""A change scored more than once counts once in a monitored window (defectops.monitoring.once)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from defectops.data import FEATURES
from defectops.monitoring.monitor import monitor_window
from defectops.monitoring.once import latest_per_change

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def test_the_latest_row_of_each_commit_is_kept_in_order() -> None:
    frame = pd.DataFrame(
        {
            "repo": ["app", "app", "app", "lib", None, None],
            "commit_sha": ["a", "b", "a", "a", None, None],
            "score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        }
    )
    frame.attrs["feature_columns"] = ["la"]
    kept, dropped = latest_per_change(frame)
    # app/a at rows 0 and 2: row 0 goes; lib/a is another repository's commit; bare rows cannot be matched
    assert dropped == 1
    assert kept["score"].tolist() == [0.2, 0.3, 0.4, 0.5, 0.6]
    assert kept.attrs == {"feature_columns": ["la"]}
    distinct = frame.iloc[[1, 3]]
    same, none = latest_per_change(distinct)
    assert none == 0
    assert same is distinct  # nothing repeated: the frame as it was


def test_blocks_of_one_commit_are_different_changes() -> None:
    frame = pd.DataFrame(
        {
            "repo": ["tf"] * 4,
            "commit_sha": ["c"] * 4,
            "path": ["main.tf", "main.tf", "vpc.tf", "main.tf"],
            "address": ["aws_vpc.this", "aws_subnet.a", "aws_vpc.this", "aws_vpc.this"],
            "score": [0.1, 0.2, 0.3, 0.4],
        }
    )
    kept, dropped = latest_per_change(frame)
    assert dropped == 1  # main.tf aws_vpc.this scored twice
    assert kept["score"].tolist() == [0.2, 0.3, 0.4]


def _rows(rng: np.random.Generator, n: int) -> pd.DataFrame:
    frame = pd.DataFrame({name: rng.gamma(2.0, 10.0, n).round(0) for name in FEATURES})
    frame["fix"] = rng.integers(0, 2, n).astype(float)
    frame["score"] = rng.beta(2, 8, n)
    return frame


def test_a_commit_scored_twice_is_one_label_and_one_window_row() -> None:
    rng = np.random.default_rng(4)
    reference = _rows(rng, 500)
    window = _rows(rng, 40)
    window["repo"] = "app"
    window["commit_sha"] = [f"{i:040x}" for i in range(40)]
    window["created_at"] = pd.Timestamp("2026-11-20", tz="UTC") + pd.to_timedelta(np.arange(40), unit="h")
    window["label"] = pd.array([1 if i % 4 == 0 else 0 for i in range(40)], dtype="Int64")
    window["label_time"] = pd.Timestamp("2026-12-01", tz="UTC")
    again = window.iloc[[0, 4, 8]].assign(created_at=pd.Timestamp("2026-12-02", tz="UTC"))
    twice = pd.concat([window, again], ignore_index=True)  # three defective commits scored again by CI
    result = monitor_window(reference, twice, now=NOW, labelled=twice)
    assert result.n_window == 40
    assert result.realized.n_matured == 40
    assert result.realized.n_positive == 10  # not 13
    assert (
        "3 rows of the window scored a change that was scored again later: each change counts once, by its "
        "latest prediction (40 kept)" in result.notes
    )
    assert any(note.startswith("3 rows of the labels that arrived") for note in result.notes)
