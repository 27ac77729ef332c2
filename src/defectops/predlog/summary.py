"""Small aggregate reads of the prediction log for the service's web UI (``/ui``).

Why not :meth:`~defectops.predlog.PredictionLog.window`: a window materialises every row with its inputs
(seconds for 100,000 predictions), while the UI's pages must answer in milliseconds. Everything here is an
indexed range count or a bounded ``ORDER BY score DESC LIMIT`` query, and portable between SQLite and
PostgreSQL (conditional sums instead of dialect-specific date or floor functions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any, Final

import sqlalchemy as sa

from defectops.predlog.engine import Store
from defectops.predlog.reads import labelled_columns, labelled_join, record_from_row
from defectops.predlog.records import PredictionRecord, aware
from defectops.predlog.schema import predictions_table, reviews_table

__all__ = ["SCORE_BINS", "WindowSummary", "count_between", "riskiest", "window_summaries"]

#: The score histogram's bins: ten of width 0.1 over [0, 1].
SCORE_BINS: Final = 10


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """What one time window of served predictions looks like, from the log alone.

    ``labels_by_source`` counts the window's predictions whose current label (own id, shadowed prediction or
    commit, as in a monitoring window) came from each source (``szz``, ``api``, ...); reviewer answers are
    counted apart (``reviews_right``/``reviews_wrong``: predictions whose latest answer says so).
    """

    since: datetime
    until: datetime
    predictions: int
    score_histogram: list[int]
    labels_by_source: dict[str, int]
    reviews_right: int
    reviews_wrong: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "predictions": self.predictions,
            "score_histogram": self.score_histogram,
            "labels_by_source": self.labels_by_source,
            "reviews_right": self.reviews_right,
            "reviews_wrong": self.reviews_wrong,
        }


def count_between(store: Store, edges: Sequence[datetime], *, served: bool = True) -> list[int]:
    """Predictions created in each ``[edges[i], edges[i+1])``: one indexed query (conditional sums)."""
    table = predictions_table
    stamps = [aware(edge, "edge") for edge in edges]
    if len(stamps) < 2:
        return []
    sums = [
        sa.func.coalesce(
            sa.func.sum(sa.case((sa.and_(table.c.created_at >= low, table.c.created_at < high), 1), else_=0)),
            0,
        )
        for low, high in pairwise(stamps)
    ]
    with store.transaction(write=False) as connection:
        row = connection.execute(
            sa.select(*sums).where(
                table.c.created_at >= stamps[0], table.c.created_at < stamps[-1], table.c.served == served
            )
        ).one()
    return [int(value) for value in row]


def riskiest(
    store: Store,
    *,
    since: datetime,
    repo: str | None = None,
    band: str | None = None,
    model_name: str | None = None,
    limit: int = 200,
) -> list[PredictionRecord]:
    """The served predictions of commits (``repo`` and ``commit_sha`` set) since ``since``, riskiest first,
    one per commit (its latest prediction), at most ``limit``."""
    table = predictions_table
    where = [
        table.c.served.is_(True),
        table.c.commit_sha.is_not(None),
        table.c.repo.is_not(None),
        table.c.created_at >= aware(since, "since"),
    ]
    if repo is not None:
        where.append(table.c.repo == repo)
    if band is not None:
        where.append(table.c.risk_band == band)
    if model_name is not None:
        where.append(table.c.model_name == model_name)
    statement = (
        sa.select(table)
        .where(*where)
        .order_by(table.c.score.desc(), table.c.created_at.desc())
        .limit(limit * 4)  # room for commits scored more than once
    )
    with store.transaction(write=False) as connection:
        rows = connection.execute(statement).all()
    latest: dict[tuple[str, str], PredictionRecord] = {}
    for row in rows:
        record = record_from_row(row)
        key = (str(record.repo), str(record.commit_sha))
        kept = latest.get(key)
        if kept is None or record.created_at > kept.created_at:
            latest[key] = record
    ranked = sorted(latest.values(), key=lambda r: (-r.score, r.repo or "", r.commit_sha or ""))
    return ranked[:limit]


def window_summaries(
    store: Store, edges: Sequence[datetime], *, model_name: str | None
) -> list[WindowSummary]:
    """One :class:`WindowSummary` per ``[edges[i], edges[i+1])`` of served predictions."""
    stamps = [aware(edge, "edge") for edge in edges]
    return [_summary(store, low, high, model_name) for low, high in pairwise(stamps)]


def _summary(store: Store, since: datetime, until: datetime, model_name: str | None) -> WindowSummary:
    table = predictions_table
    where = [table.c.created_at >= since, table.c.created_at < until, table.c.served.is_(True)]
    if model_name is not None:
        where.append(table.c.model_name == model_name)
    bins = [
        sa.func.coalesce(
            sa.func.sum(
                sa.case(
                    (
                        sa.and_(
                            table.c.score >= index / SCORE_BINS,
                            table.c.score < (index + 1) / SCORE_BINS if index < SCORE_BINS - 1 else sa.true(),
                        ),
                        1,
                    ),
                    else_=0,
                )
            ),
            0,
        )
        for index in range(SCORE_BINS)
    ]
    source = labelled_columns()[2]  # the label's source by the monitoring window's precedence
    joined = labelled_join(None)
    rv = reviews_table
    latest_review = (
        sa.select(rv.c.prediction_id, sa.func.max(rv.c.review_id).label("review_id"))
        .group_by(rv.c.prediction_id)
        .subquery()
    )
    with store.transaction(write=False) as connection:
        totals = connection.execute(sa.select(sa.func.count(), *bins).where(*where)).one()
        sources = connection.execute(
            sa.select(source.label("source"), sa.func.count())
            .select_from(joined)
            .where(*where, source.is_not(None))
            .group_by(source)
        ).all()
        verdicts = connection.execute(
            sa.select(rv.c.verdict, sa.func.count())
            .select_from(
                rv.join(latest_review, latest_review.c.review_id == rv.c.review_id).join(
                    table, table.c.prediction_id == rv.c.prediction_id
                )
            )
            .where(*where)
            .group_by(rv.c.verdict)
        ).all()
    counts = {str(verdict): int(n) for verdict, n in verdicts}
    return WindowSummary(
        since=since,
        until=until,
        predictions=int(totals[0]),
        score_histogram=[int(value) for value in totals[1:]],
        labels_by_source={str(name): int(n) for name, n in sources},
        reviews_right=counts.get("right", 0),
        reviews_wrong=counts.get("wrong", 0),
    )
