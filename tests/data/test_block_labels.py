"""Block-level labels as known at a time, worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from defectops.data import BLOCK_LINK_COLUMNS, block_labels_as_of
from defectops.errors import InputError

T0 = datetime(2024, 1, 1, tzinfo=UTC)
A, B, FIX = "a" * 40, "b" * 40, "f" * 40

BLOCKS = pd.DataFrame(
    {
        "sha": [A, A, B],
        "path": ["main.tf", "main.tf", "main.tf"],
        "address": ["aws_iam_role.this", "module.x", "module.x"],
        "committed_at": pd.to_datetime([T0, T0, T0 + timedelta(days=10)], utc=True),
    }
)
# The fix, 20 days in, names only the role of commit A.
LINKS = pd.DataFrame(
    [[FIX, pd.Timestamp(T0 + timedelta(days=20)), A, "main.tf", "aws_iam_role.this", 2]],
    columns=BLOCK_LINK_COLUMNS,
)


def labels_at(days: float) -> list[tuple[str, str, object, object]]:
    frame = block_labels_as_of(BLOCKS, LINKS, T0 + timedelta(days=days), waiting_days=10)
    return [
        (
            r.sha[0],
            r.address,
            None if pd.isna(r.label) else int(r.label),
            None if pd.isna(r.label_known_at) else (r.label_known_at - pd.Timestamp(T0)).days,
        )
        for r in frame.itertuples(index=False)
    ]


def test_labels_as_known_at_each_time() -> None:
    # Day 5: B not made yet; A's blocks are younger than the 10 waiting days.
    assert labels_at(5) == [("a", "aws_iam_role.this", None, None), ("a", "module.x", None, None)]
    # Day 15: A's blocks look clean (the fix is in the future); B is 5 days old.
    assert labels_at(15) == [
        ("a", "aws_iam_role.this", 0, 10),
        ("a", "module.x", 0, 10),
        ("b", "module.x", None, None),
    ]
    # Day 25: the fix is known; it names A's role only (not the same address in another commit).
    assert labels_at(25) == [
        ("a", "aws_iam_role.this", 1, 20),
        ("a", "module.x", 0, 10),
        ("b", "module.x", 0, 20),
    ]


def test_naive_time_is_refused() -> None:
    with pytest.raises(InputError):
        block_labels_as_of(BLOCKS, LINKS, datetime(2024, 1, 1), waiting_days=10)
