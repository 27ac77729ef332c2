"""Reading the prediction log: single predictions, and the windows monitoring and retraining read.

A window is the predictions created in ``[since, until)`` with their inputs as columns and each one's label
joined by precedence (its own id, the served prediction it shadows, its commit); ``as_of`` replays the labels
as they stood at a past time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from defectops.data import PREDICTION_COLUMNS, normalise_frame
from defectops.errors import InputError, NotFoundError
from defectops.predlog.engine import Store
from defectops.predlog.records import (
    InputValue,
    PredictionRecord,
    aware,
    checked_prediction_id,
    checked_sha,
)
from defectops.predlog.schema import FB_BY_ID, FB_BY_SHA, FB_BY_SHADOW, feedback_table, predictions_table

__all__ = ["LogCounts", "get_prediction", "predictions_by_commit", "read_counts", "read_window"]


@dataclass(frozen=True, slots=True)
class LogCounts:
    """Sizes of the log, optionally restricted to predictions created in ``[since, until)``."""

    predictions: int
    served: int
    shadow: int
    labeled: int
    feedback_current: int
    feedback_total: int
    by_model_version: dict[str, int]


def record_from_row(row: sa.Row[Any]) -> PredictionRecord:
    values = row._mapping
    return PredictionRecord(
        prediction_id=values["prediction_id"],
        created_at=values["created_at"],
        model_name=values["model_name"],
        model_version=values["model_version"],
        served=bool(values["served"]),
        inputs=values["inputs"],
        score=values["score"],
        threshold=values["threshold"],
        risk_label=int(values["risk_label"]),
        risk_band=values["risk_band"],
        repo=values["repo"],
        commit_sha=values["commit_sha"],
        shadow_of=values["shadow_of"],
    )


def _frame_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    # SQLite hands back the stored UTC text ("YYYY-MM-DD HH:MM:SS.ffffff"), PostgreSQL aware datetimes.
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    frame["label_time"] = pd.to_datetime(frame["label_time"], utc=True, format="ISO8601")
    frame["served"] = frame["served"].astype(bool)
    frame["score"] = frame["score"].astype("float64")
    frame["threshold"] = frame["threshold"].astype("float64")
    frame["risk_label"] = frame["risk_label"].astype("int64")
    frame["label"] = frame["label"].astype("Int64")
    frame["label_feedback_id"] = frame["label_feedback_id"].astype("Int64")
    return frame


def get_prediction(store: Store, prediction_id: str) -> PredictionRecord:
    """One logged prediction by id (:class:`NotFoundError` if it was never logged)."""
    canonical = checked_prediction_id(prediction_id)
    with store.transaction(write=False) as connection:
        row = connection.execute(
            sa.select(predictions_table).where(predictions_table.c.prediction_id == canonical)
        ).one_or_none()
    if row is None:
        raise NotFoundError(f"no logged prediction with id {canonical}")
    return record_from_row(row)


def predictions_by_commit(store: Store, repo: str, commit_sha: str) -> list[PredictionRecord]:
    """Every prediction logged for one commit (served and shadow), oldest first."""
    sha = checked_sha(commit_sha)
    table = predictions_table
    with store.transaction(write=False) as connection:
        rows = connection.execute(
            sa.select(table)
            .where(table.c.repo == repo, table.c.commit_sha == sha)
            .order_by(table.c.created_at, table.c.prediction_id)
        ).all()
    return [record_from_row(row) for row in rows]


def repos_of_commits(store: Store, commit_shas: Iterable[str], *, chunk: int = 500) -> set[str]:
    """The repository ids under which predictions of any of these commits were logged (a sha names a commit
    whatever the repository id a client sent, so this is how labels find the predictions they answer)."""
    wanted = sorted({str(sha).lower() for sha in commit_shas})
    table = predictions_table
    found: set[str] = set()
    with store.transaction(write=False) as connection:
        for start in range(0, len(wanted), chunk):
            rows = connection.execute(
                sa.select(table.c.repo)
                .where(table.c.commit_sha.in_(wanted[start : start + chunk]), table.c.repo.is_not(None))
                .distinct()
            ).all()
            found.update(str(row[0]) for row in rows)
    return found


def read_window(
    store: Store,
    since: datetime,
    until: datetime,
    *,
    model_version: str | None = None,
    model_name: str | None = None,
    served: bool | None = None,
    as_of: datetime | None = None,
    labeled_only: bool = False,
) -> pd.DataFrame:
    """The window :meth:`defectops.predlog.PredictionLog.window` returns (its docstring says what)."""
    where = _prediction_filter(since, until, model_version, model_name, served)
    columns = labelled_columns()
    table = predictions_table
    sqlite = store.dialect == "sqlite"

    def raw_time(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        # Skip UTCDateTime's per-row processing; _frame_dtypes converts the whole column at once
        # (SQLite: the stored UTC text; PostgreSQL: the driver's aware datetimes).
        plain = sa.String() if sqlite else sa.DateTime(timezone=True)
        return sa.type_coerce(column, plain).label(column.name)

    selected: list[sa.ColumnElement[Any]] = [table.c[name] for name in PREDICTION_COLUMNS[:12]]
    selected[PREDICTION_COLUMNS.index("created_at")] = raw_time(table.c.created_at)
    columns[1] = raw_time(columns[1])
    statement = (
        # Inputs as JSON text: one json.loads of all rows is several times faster than one per row.
        sa.select(*selected, *columns, sa.cast(table.c.inputs, sa.Text()).label("inputs"))
        .select_from(labelled_join(as_of))
        .where(*where)
        .order_by(table.c.created_at, table.c.prediction_id)
    )
    if labeled_only:
        statement = statement.where(columns[0].is_not(None))
    with store.transaction(write=False, bulk_read=True) as connection:
        rows = connection.execute(statement).all()
    if rows:
        *values, inputs_text = (list(column) for column in zip(*rows, strict=True))
    else:
        values, inputs_text = [[] for _ in PREDICTION_COLUMNS], []
    frame = _frame_dtypes(pd.DataFrame(dict(zip(PREDICTION_COLUMNS, values, strict=True))))
    inputs: list[dict[str, InputValue]] = json.loads("[" + ",".join(inputs_text) + "]")
    # The feature contract: metrics as float64, whatever an older writer stored (``fix`` as true/false).
    features = normalise_frame(pd.DataFrame.from_records(inputs)) if inputs else pd.DataFrame()
    feature_columns = sorted(str(name) for name in features.columns)
    if feature_columns:
        frame = pd.concat([frame, features[feature_columns]], axis=1)
    frame.attrs["feature_columns"] = feature_columns
    return frame


def read_counts(
    store: Store,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    as_of: datetime | None = None,
) -> LogCounts:
    """How many predictions (served, shadow, labelled, per model version) and feedback rows there are."""
    table = predictions_table
    where: list[sa.ColumnElement[bool]] = []
    if since is not None:
        where.append(table.c.created_at >= aware(since, "since"))
    if until is not None:
        where.append(table.c.created_at < aware(until, "until"))
    label = labelled_columns()[0]
    with store.transaction(write=False, bulk_read=True) as connection:
        totals = connection.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sa.case((table.c.served, 1), else_=0)), 0),
                sa.func.count(label),
            )
            .select_from(labelled_join(as_of))
            .where(*where)
        ).one()
        versions = connection.execute(
            sa.select(table.c.model_version, sa.func.count())
            .where(*where)
            .group_by(table.c.model_version)
            .order_by(table.c.model_version)
        ).all()
        fb = feedback_table
        feedback_total, feedback_current = connection.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sa.case((fb.c.superseded_at.is_(None), 1), else_=0)), 0),
            )
        ).one()
    total, served, labeled = (int(value) for value in totals)
    return LogCounts(
        predictions=total,
        served=served,
        shadow=total - served,
        labeled=labeled,
        feedback_current=int(feedback_current),
        feedback_total=int(feedback_total),
        by_model_version={str(version): int(count) for version, count in versions},
    )


# -- query helpers ---------------------------------------------------------------------------------------


def _prediction_filter(
    since: datetime,
    until: datetime,
    model_version: str | None,
    model_name: str | None,
    served: bool | None,
) -> list[sa.ColumnElement[bool]]:
    since, until = aware(since, "since"), aware(until, "until")
    if until < since:
        raise InputError(f"window ends ({until.isoformat()}) before it starts ({since.isoformat()})")
    table = predictions_table
    where = [table.c.created_at >= since, table.c.created_at < until]
    if model_version is not None:
        where.append(table.c.model_version == model_version)
    if model_name is not None:
        where.append(table.c.model_name == model_name)
    if served is not None:
        where.append(table.c.served == served)
    return where


def _current(alias: sa.FromClause, as_of: datetime | None) -> sa.ColumnElement[bool]:
    if as_of is None:
        return alias.c.superseded_at.is_(None)
    moment = aware(as_of, "as_of")
    return sa.and_(
        alias.c.received_at <= moment,
        sa.or_(alias.c.superseded_at.is_(None), alias.c.superseded_at > moment),
    )


def labelled_join(as_of: datetime | None) -> sa.FromClause:
    table = predictions_table
    by_id, by_shadow, by_sha = FB_BY_ID, FB_BY_SHADOW, FB_BY_SHA
    return (
        table.outerjoin(
            by_id,
            sa.and_(by_id.c.prediction_id == table.c.prediction_id, _current(by_id, as_of)),
        )
        .outerjoin(
            by_shadow,
            sa.and_(by_shadow.c.prediction_id == table.c.shadow_of, _current(by_shadow, as_of)),
        )
        .outerjoin(
            by_sha,
            sa.and_(
                by_sha.c.prediction_id.is_(None),
                by_sha.c.repo == table.c.repo,
                by_sha.c.commit_sha == table.c.commit_sha,
                _current(by_sha, as_of),
            ),
        )
    )


def labelled_columns() -> list[sa.ColumnElement[Any]]:
    """Label, label time, source and feedback id by precedence (the join carries the as-of condition)."""
    by_id, by_shadow, by_sha = FB_BY_ID, FB_BY_SHADOW, FB_BY_SHA

    def pick(column: str, label: str) -> sa.ColumnElement[Any]:
        return sa.case(
            (by_id.c.feedback_id.is_not(None), by_id.c[column]),
            (by_shadow.c.feedback_id.is_not(None), by_shadow.c[column]),
            else_=by_sha.c[column],
        ).label(label)

    return [
        pick("label", "label"),
        pick("label_time", "label_time"),
        pick("source", "label_source"),
        pick("feedback_id", "label_feedback_id"),
    ]
