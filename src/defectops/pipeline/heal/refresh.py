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
from defectops.training import known_labels


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """The history as of the cycle (None without a source), and the feedback sent from it (None when no
    prediction of its commits was logged), sent for labels dated after ``feedback_since``."""

    history: History | None
    feedback: FeedbackCounts | None = None
    feedback_since: datetime | None = None


def refresh_step(ctx: HealContext, cycle: Cycle, champion: int) -> RefreshResult:
    if ctx.source is None:
        return RefreshResult(history=None)
    history = ctx.source.refresh(cycle.now)
    evidence: dict[str, Any] = history.summary.as_dict() if history.summary is not None else {}
    result = RefreshResult(history=history)
    message = "history brought up to now"
    previous = ctx.records(step="refresh")
    synced_before = _repos_synced(previous)
    repos = _feedback_repos(ctx, history, cycle.now)
    if repos:
        lookback = timedelta(days=ctx.settings.feedback_lookback_days)
        last = previous[-1].at - lookback if previous else None
        total = FeedbackCounts()
        first = [repo for repo in repos if repo not in synced_before]
        for repo in repos:
            # A repository id seen for the first time gets every label the history knows, not only new ones.
            since = None if repo in first else last
            total = total + sync_feedback(ctx.log, history.labels, repo=repo, now=cycle.now, since=since)
        result = RefreshResult(history=history, feedback=total, feedback_since=last)
        evidence["feedback"] = total.as_dict()
        evidence["feedback_since"] = last
        evidence["feedback_repos"] = repos
        evidence["feedback_repos_first_sync"] = first
        message += f"; {_feedback_line(total)}"
        if len(repos) > 1:  # each id gets its own copy of a label: 7611 "new" for flask's 3806 commits
            shown = ", ".join(repos[:5]) + (f" and {len(repos) - 5} more" if len(repos) > 5 else "")
            message += (
                f", under {len(repos)} repository ids ({shown}), each with its own copy of a commit's label"
            )
    cycle.add("refresh", "ok", message, champion=champion, evidence=evidence)
    return result


def _feedback_repos(ctx: HealContext, history: History, now: datetime) -> list[str]:
    """Where the history's labels go: ``--feedback-repo`` when given; else every repository id under which
    the service logged a prediction of one of this history's commits (found by sha), so labels reach the
    predictions whatever id the client sent ("owner/name" from the Action, a service's --repository id)."""
    if ctx.feedback_repo is not None:
        return [ctx.feedback_repo]
    known = known_labels(history.labels, now)
    if known.empty:
        return []
    return sorted(ctx.log.repos_of(known["sha"].astype(str)))


def _repos_synced(previous: list[Any]) -> set[str]:
    """The repository ids earlier refresh steps already sent labels to."""
    synced: set[str] = set()
    for record in previous:
        repos = (record.evidence or {}).get("feedback_repos")
        if isinstance(repos, list):
            synced.update(str(r) for r in repos)
    return synced


def _feedback_line(counts: FeedbackCounts) -> str:
    """What the labels sent did in the prediction log, e.g. ``labels sent to the prediction log: 12 new, 3
    corrected (they match 30 logged predictions)``. The count of logged predictions is of every label sent,
    so it comes before the clean verdicts that were kept out, not after them."""
    line = (
        f"labels sent to the prediction log: {counts.recorded} new, {counts.replaced} corrected "
        f"(they match {counts.matched_predictions} logged predictions)"
    )
    if counts.kept == 1:  # the usual case: one reported defect SZZ found no fix for ("1 clean verdicts")
        line += "; 1 clean verdict left a defect reported through the API in place"
    elif counts.kept:
        line += f"; {counts.kept} clean verdicts left defects reported through the API in place"
    return line
