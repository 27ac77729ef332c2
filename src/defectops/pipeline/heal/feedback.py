"""The labels the history learnt, sent to the service's prediction log as feedback (``--feedback-repo``).

A label of a commit the service scored is that prediction's ground truth: the gate and the rollback watch
judge on logged requests with matured labels, and they get them from here when nobody posts feedback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from defectops.data import VERDICT
from defectops.training import known_labels

if TYPE_CHECKING:
    from defectops.predlog import PredictionLog


@dataclass(frozen=True, slots=True)
class FeedbackCounts:
    """What the log made of the labels sent: new, already known, corrected; the predictions they reached."""

    recorded: int = 0
    duplicate: int = 0
    replaced: int = 0
    matched_predictions: int = 0
    kept: int = 0  # clean SZZ verdicts that left a defect reported through the API in place

    def __add__(self, other: FeedbackCounts) -> FeedbackCounts:
        return FeedbackCounts(
            recorded=self.recorded + other.recorded,
            duplicate=self.duplicate + other.duplicate,
            replaced=self.replaced + other.replaced,
            matched_predictions=self.matched_predictions + other.matched_predictions,
            kept=self.kept + other.kept,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "recorded": self.recorded,
            "duplicate": self.duplicate,
            "replaced": self.replaced,
            "matched_predictions": self.matched_predictions,
            "kept": self.kept,
        }


def sync_feedback(
    log: PredictionLog,
    labels: pd.DataFrame,
    *,
    repo: str,
    now: datetime,
    since: datetime | None,
    batch_size: int = 1000,
) -> FeedbackCounts:
    """Write the labels that became known in ``(since, now]`` into the prediction log as feedback for
    ``(repo, sha)``, dated when they became known, so predictions the service made for those commits get
    their ground truth. Idempotent (the log ignores a label it already has)."""
    from defectops.predlog import FeedbackRecord

    known = known_labels(labels, now)
    when = pd.to_datetime(known["label_known_at"], utc=True)
    if since is not None:
        known = known.loc[when > pd.Timestamp(since)]
        when = when.loc[known.index]
    records = [
        FeedbackRecord(
            label=1 if verdict == "defect" else 0,
            repo=repo,
            commit_sha=str(sha),
            label_time=stamp.to_pydatetime(),
            source="szz",
        )
        for sha, verdict, stamp in zip(known["sha"], known[VERDICT], when, strict=True)
    ]
    statuses = {"recorded": 0, "duplicate": 0, "replaced": 0, "kept": 0}
    matched = 0
    for start in range(0, len(records), batch_size):
        for outcome in log.add_feedback_batch(records[start : start + batch_size], now=now):
            statuses[outcome.status] += 1
            matched += outcome.matched_predictions
    return FeedbackCounts(
        recorded=statuses["recorded"],
        duplicate=statuses["duplicate"],
        replaced=statuses["replaced"],
        matched_predictions=matched,
        kept=statuses["kept"],
    )
