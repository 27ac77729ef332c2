"""The labels that arrived during a monitored window: what realized performance is judged on.

Why not the window's own commits: a defect label arrives when its fix lands, a clean one only at the end of
the waiting period (90 days by default). Of the commits served in the last 30 days, the clean ones have no
label yet and the defective ones only if already fixed: on numpy at most 19 of ~135 commits of a 30-day
window had a label by the window's end, realized performance was never judged (30 labels, 5 of each class,
needed), and a drop in label quality could not be seen at all.

The labels that *arrived* during the window (by ``label_time``) for commits the model served up to
``label_horizon_days`` before are many more (numpy: ~100 per 30 days), they are the labels the labelling
process produced in that period, and they judge the model that is serving now on the commits it scored. The
ROC-AUC of such a sample is not biased by the arrival order: which labels arrive in a period depends on the
class (defects when fixed, clean after the wait), and ROC-AUC compares the two classes' scores, whatever
their proportions. A calibration check on the same sample would be biased (see docs/monitoring.md): it is
not made.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from defectops.data import COMMIT_TIME
from defectops.errors import InputError

#: The log's column of when a row was predicted, used as the commit's time when the commit time is missing.
CREATED_AT = "created_at"


def _utc(value: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _times(frame: pd.DataFrame, column: str) -> pd.Series:
    try:
        return pd.to_datetime(frame[column], utc=True, errors="raise", format="ISO8601")
    except (TypeError, ValueError) as exc:
        raise InputError(f"column {column!r} is not a timestamp: {exc}") from None


def arrived_labels(
    served: pd.DataFrame, *, since: datetime, now: datetime, horizon_days: float
) -> pd.DataFrame:
    """The rows of ``served`` whose label arrived in ``(since, now]`` and whose commit is at most
    ``horizon_days`` older than ``now`` (commit time where logged, else the prediction time).

    ``served`` holds logged predictions with ``score``, ``label`` and ``label_time``; a row without a label
    or a label time has not arrived, and nothing arrives in an empty period (``since >= now``).
    The result keeps the row order and the frame's attrs.
    """
    columns = {"label", "label_time"} <= set(served.columns)
    if since >= now or not columns or len(served) == 0:
        out = served.iloc[0:0].copy()
        out.attrs = dict(served.attrs)
        return out
    label_time = _times(served, "label_time")
    keep = served["label"].notna() & (label_time > _utc(since)) & (label_time <= _utc(now))
    commit = pd.Series(pd.NaT, index=served.index, dtype="datetime64[ns, UTC]")
    if COMMIT_TIME in served.columns:
        commit = _times(served, COMMIT_TIME)
    if CREATED_AT in served.columns:
        commit = commit.fillna(_times(served, CREATED_AT))
    oldest = _utc(now) - timedelta(days=horizon_days)
    keep &= (commit >= oldest).fillna(False)  # a row with no time at all cannot be placed: left out
    out = served.loc[keep.to_numpy(dtype=bool)].copy()
    out.attrs = dict(served.attrs)
    return out
