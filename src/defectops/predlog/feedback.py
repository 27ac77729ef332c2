"""Feedback: the ground truth that joins logged predictions, idempotent and with its history kept.

Feedback (labels) joins predictions by prediction id or by (repo, commit sha). The same label twice for the
same target is one row; a different label supersedes the current one (the latest received wins) and the older
row stays with ``superseded_at`` set, so a monitoring run can be replayed "as of" any past time. Concurrent
writers are serialised per target (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: advisory locks), and a unique
index allows one current label per target whatever a writer does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from defectops.errors import InputError, LabelConflictError, NotFoundError, PredictionLogError
from defectops.predlog.engine import Store
from defectops.predlog.records import (
    aware,
    canonical_uuid,
    checked_prediction_id,
    checked_sha,
    normal_sha,
    utc,
)
from defectops.predlog.schema import feedback_table, predictions_table

__all__ = [
    "FeedbackOutcome",
    "FeedbackRecord",
    "FeedbackStatus",
    "StoredFeedback",
    "read_feedback_history",
    "record_feedback",
]

FeedbackStatus = Literal["recorded", "duplicate", "replaced", "kept"]

_MAX_FEEDBACK_ATTEMPTS: Final = 5
#: Sources whose labels only another label of such a source may replace: SZZ mining (``heal`` writes them).
#: Every other writer, the HTTP API above all (``api:<role>``), can add labels but never overturn these.
PROTECTED_SOURCES: Final = frozenset({"szz"})


class FeedbackRecord(BaseModel):
    """Ground truth for one target: a prediction id, or a commit (repo + sha) that labels all its predictions.

    ``label`` is 1 for defect-inducing, 0 for clean. ``label_time`` is when the truth became known (e.g. the
    fix commit's time or the end of the waiting period); it defaults to the time the feedback is received.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: Literal[0, 1]
    prediction_id: str | None = None
    repo: str | None = Field(default=None, min_length=1, max_length=255)
    commit_sha: str | None = None
    label_time: datetime | None = None
    source: str = Field(default="api", min_length=1, max_length=64)

    @field_validator("prediction_id", mode="before")
    @classmethod
    def _check_id(cls, value: object) -> str | None:
        return None if value is None else canonical_uuid(value, "prediction_id")

    @field_validator("commit_sha")
    @classmethod
    def _check_sha(cls, value: str | None) -> str | None:
        return normal_sha(value)

    @field_validator("label_time")
    @classmethod
    def _check_label_time(cls, value: datetime | None) -> datetime | None:
        return None if value is None else utc(value, "label_time")

    @model_validator(mode="after")
    def _check_target(self) -> FeedbackRecord:
        by_id = self.prediction_id is not None
        by_sha = self.repo is not None or self.commit_sha is not None
        if by_id == by_sha:
            raise ValueError("feedback needs exactly one target: prediction_id, or repo and commit_sha")
        if by_sha and (self.repo is None or self.commit_sha is None):
            raise ValueError("feedback by commit needs both repo and commit_sha")
        return self


@dataclass(frozen=True, slots=True)
class FeedbackOutcome:
    """What :meth:`PredictionLog.add_feedback` did with one feedback record.

    ``recorded``: a new label for a target that had none; ``duplicate``: the target already had this label
    (no row written, ``feedback_id`` is the existing row); ``replaced``: a different label superseded the
    current one (``replaced_feedback_id``); ``kept``: a clean label from a protected source (SZZ: no fix found
    in the waiting period) left a defect label of another writer (a report through the API) current, as the
    absence of a fix does not refute a reported defect (``feedback_id`` is the kept row).
    ``matched_predictions`` counts the logged predictions of the
    target (for an id: the prediction and its shadows; for a commit: every prediction of that repo and sha), 0
    if none yet.
    """

    feedback_id: int
    status: FeedbackStatus
    replaced_feedback_id: int | None
    matched_predictions: int


@dataclass(frozen=True, slots=True)
class StoredFeedback:
    """One row of the feedback table, current (``superseded_at is None``) or historical."""

    feedback_id: int
    prediction_id: str | None
    repo: str | None
    commit_sha: str | None
    label: int
    label_time: datetime
    source: str
    received_at: datetime
    superseded_at: datetime | None
    supersedes: int | None


def record_feedback(store: Store, batch: Sequence[FeedbackRecord], *, now: datetime) -> list[FeedbackOutcome]:
    """Record labels idempotently, all in one transaction (see :meth:`PredictionLog.add_feedback_batch`)."""
    received_at = aware(now, "now")
    if not batch:
        return []
    last_error: sa_exc.IntegrityError | None = None
    for _attempt in range(_MAX_FEEDBACK_ATTEMPTS):
        try:
            with store.transaction(write=True) as connection:
                _lock_targets(store, connection, batch)
                return [_apply_feedback(connection, item, received_at) for item in batch]
        except sa_exc.IntegrityError as error:
            # The locks make this unreachable in normal operation; the unique index is the last line of
            # defence (e.g. a writer that does not take the locks), and a retry then sees its row.
            last_error = error
    raise PredictionLogError(
        f"feedback kept conflicting with concurrent writers after {_MAX_FEEDBACK_ATTEMPTS} attempts: "
        f"{last_error.orig if last_error else ''}"
    )


def _lock_targets(store: Store, connection: Connection, batch: Sequence[FeedbackRecord]) -> None:
    """Serialise feedback writers per target (PostgreSQL; SQLite's BEGIN IMMEDIATE already does).

    Read-then-write on the current label would otherwise race under READ COMMITTED: two writers both see
    no current row and both insert. Transaction-scoped advisory locks on a hash of each target, taken in
    sorted order (no deadlock between batches), make the second writer wait and then see the first's row.
    """
    if store.dialect != "postgresql":
        return
    keys = sorted(
        {
            f"id:{item.prediction_id}" if item.prediction_id else f"sha:{item.repo}:{item.commit_sha}"
            for item in batch
        }
    )
    for key in keys:
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0))))


def _apply_feedback(connection: Connection, item: FeedbackRecord, received_at: datetime) -> FeedbackOutcome:
    fb = feedback_table
    pr = predictions_table
    if item.prediction_id is not None:
        exists = connection.execute(
            sa.select(pr.c.prediction_id).where(pr.c.prediction_id == item.prediction_id)
        ).first()
        if exists is None:
            raise NotFoundError(f"no logged prediction with id {item.prediction_id}")
        target = fb.c.prediction_id == item.prediction_id
        matched = 1 + int(
            connection.execute(
                sa.select(sa.func.count()).select_from(pr).where(pr.c.shadow_of == item.prediction_id)
            ).scalar_one()
        )
    else:
        target = sa.and_(
            fb.c.prediction_id.is_(None), fb.c.repo == item.repo, fb.c.commit_sha == item.commit_sha
        )
        matched = int(
            connection.execute(
                sa.select(sa.func.count())
                .select_from(pr)
                .where(pr.c.repo == item.repo, pr.c.commit_sha == item.commit_sha)
            ).scalar_one()
        )
    current = connection.execute(
        sa.select(fb.c.feedback_id, fb.c.label, fb.c.received_at, fb.c.source)
        .where(target, fb.c.superseded_at.is_(None))
        .with_for_update()
    ).first()
    if current is not None and current.label == item.label:
        return FeedbackOutcome(int(current.feedback_id), "duplicate", None, matched)
    if (
        current is not None
        and current.label == 1
        and item.label == 0
        and item.source in PROTECTED_SOURCES
        and current.source not in PROTECTED_SOURCES
    ):
        # SZZ's "clean" only means no fix blamed the commit in the waiting period: a reported defect stays.
        return FeedbackOutcome(int(current.feedback_id), "kept", None, matched)
    if current is not None and current.source in PROTECTED_SOURCES and item.source not in PROTECTED_SOURCES:
        raise LabelConflictError(
            f"the current label of this target comes from {current.source} (feedback {current.feedback_id}); "
            f"a label from {item.source} cannot replace it"
        )
    replaced: int | None = None
    if current is not None:
        # Keep history intervals ordered even if the caller's clock went backwards.
        received_at = max(received_at, current.received_at)
        connection.execute(
            fb.update().where(fb.c.feedback_id == current.feedback_id).values(superseded_at=received_at)
        )
        replaced = int(current.feedback_id)
    new_id = connection.execute(
        fb.insert()
        .values(
            prediction_id=item.prediction_id,
            repo=item.repo,
            commit_sha=item.commit_sha,
            label=item.label,
            label_time=item.label_time or received_at,
            source=item.source,
            received_at=received_at,
            superseded_at=None,
            supersedes=replaced,
        )
        .returning(fb.c.feedback_id)
    ).scalar_one()
    return FeedbackOutcome(int(new_id), "recorded" if replaced is None else "replaced", replaced, matched)


def read_feedback_history(
    store: Store,
    *,
    prediction_id: str | None = None,
    repo: str | None = None,
    commit_sha: str | None = None,
) -> list[StoredFeedback]:
    """Every feedback row of one target (current and superseded), in the order received."""
    fb = feedback_table
    if prediction_id is not None and repo is None and commit_sha is None:
        where = fb.c.prediction_id == checked_prediction_id(prediction_id)
    elif prediction_id is None and repo is not None and commit_sha is not None:
        sha = checked_sha(commit_sha)
        where = sa.and_(fb.c.prediction_id.is_(None), fb.c.repo == repo, fb.c.commit_sha == sha)
    else:
        raise InputError("feedback_history needs prediction_id, or repo and commit_sha")
    with store.transaction(write=False) as connection:
        rows = connection.execute(
            sa.select(fb).where(where).order_by(fb.c.received_at, fb.c.feedback_id)
        ).all()
    return [
        StoredFeedback(
            feedback_id=int(row.feedback_id),
            prediction_id=row.prediction_id,
            repo=row.repo,
            commit_sha=row.commit_sha,
            label=int(row.label),
            label_time=row.label_time,
            source=row.source,
            received_at=row.received_at,
            superseded_at=row.superseded_at,
            supersedes=row.supersedes,
        )
        for row in rows
    ]
