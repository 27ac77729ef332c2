"""Step 1, refresh: bring the history up to the cycle and send the labels it learnt to the prediction log.

It comes first, not after the decision as in the issue's sketch, because every later step needs the newest
labels: the gate and the rollback watch judge on matured labels of logged requests, and the ``new_labels``
rule counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from defectops.pipeline.heal.context import HealContext
from defectops.pipeline.heal.cycle import Cycle
from defectops.pipeline.heal.feedback import FeedbackCounts, sync_feedback
from defectops.pipeline.heal.sources import History


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """The history as of the cycle (None without a source), and the feedback sent from it (None without
    ``feedback_repo``), sent for labels dated after ``feedback_since``."""

    history: History | None
    feedback: FeedbackCounts | None = None
    feedback_since: datetime | None = None


def refresh_step(ctx: HealContext, cycle: Cycle, champion: int) -> RefreshResult:
    if ctx.source is None:
        return RefreshResult(history=None)
    history = ctx.source.refresh(cycle.now)
    evidence: dict[str, Any] = history.summary.as_dict() if history.summary is not None else {}
    result = RefreshResult(history=history)
    if ctx.feedback_repo is not None:
        previous = ctx.records(step="refresh")
        lookback = timedelta(days=ctx.settings.feedback_lookback_days)
        since = previous[-1].at - lookback if previous else None
        counts = sync_feedback(ctx.log, history.labels, repo=ctx.feedback_repo, now=cycle.now, since=since)
        result = RefreshResult(history=history, feedback=counts, feedback_since=since)
        evidence["feedback"] = counts.as_dict()
        evidence["feedback_since"] = since
    cycle.add("refresh", "ok", "history brought up to now", champion=champion, evidence=evidence)
    return result
