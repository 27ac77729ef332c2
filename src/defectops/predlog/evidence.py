"""Which labelled rows of a prediction-log window are evidence of how a model does on live commits.

A row counts when its label has *matured* (known, and dated no later than the time judged at) and was not
already known when the judged model learnt its labels (*unlearnt*). Why the second rule: a request for an
older commit (a reviewer scoring last month's commits through ``/v1/commits/score``, a CI job over a range
of history) gets the label that commit already had; a label known when the model was trained is one of its
training rows, and counting it as live evidence flatters that model (scrapy: 3 of the 7 labels the model
card counted after ``defectops heal`` were SZZ labels its version had trained on). The heal loop's gate and
rollback watch, the model card's served metrics, and monitoring's realized performance all ask this one
question, so they all answer it here.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

__all__ = ["matured", "unlearnt"]


def matured(frame: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Rows of a prediction-log window whose label is known and dated at or before ``now``."""
    if len(frame) == 0:
        return frame
    known = frame["label"].notna()
    if "label_time" in frame.columns:
        times = pd.to_datetime(frame["label_time"], utc=True)
        known &= (times <= pd.Timestamp(now)).fillna(False)
    return frame.loc[known.to_numpy(dtype=bool)].reset_index(drop=True)


def unlearnt(rows: pd.DataFrame, learnt_at: datetime | None) -> pd.DataFrame:
    """The labelled ``rows`` whose label is dated after ``learnt_at``, when the judged model(s) learnt their
    labels (``ModelRegistry.labels_learnt_at``; for two models compared, the later of the two).

    ``learnt_at`` None (a model that learnt none of the repository's labels, the cross-project starter) keeps
    every row. Rows without a label time are kept: nothing says they were learnt.
    """
    if learnt_at is None or len(rows) == 0 or "label_time" not in rows.columns:
        return rows
    times = pd.to_datetime(rows["label_time"], utc=True)
    after = (times > pd.Timestamp(learnt_at)).fillna(True)
    return rows.loc[after.to_numpy(dtype=bool)].reset_index(drop=True)
