"""The prediction log's tables: ``predictions`` and ``feedback``, the same on SQLite and PostgreSQL.

This is the on-disk schema (created by :meth:`~defectops.predlog.PredictionLog.from_url` when missing); see
docs/storage.md. Times are :class:`UTCDateTime`; inputs are JSON (JSONB on PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

from defectops.data import RISK_BAND_NAMES
from defectops.errors import InputError

__all__ = [
    "FB_BY_ID",
    "FB_BY_SHA",
    "FB_BY_SHADOW",
    "INSERT_COLUMNS",
    "RISK_BAND_CHECK",
    "UTCDateTime",
    "feedback_table",
    "metadata",
    "predictions_table",
    "reviews_table",
]


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so UTC is stored naive (ISO text, which sorts
    and compares correctly). Naive datetimes are refused: a guessed zone would silently shift the log.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise InputError(f"naive datetime {value.isoformat()} cannot be stored; give a time zone (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_JSON: Final = sa.JSON().with_variant(JSONB(), "postgresql")
_CURRENT = sa.text("superseded_at IS NULL")
_CURRENT_BY_SHA = sa.text("superseded_at IS NULL AND prediction_id IS NULL")

#: The ``risk_band`` constraint (four bands; logs made with three are migrated, see predlog.migrations).
RISK_BAND_CHECK: Final = f"risk_band IN ({', '.join(repr(name) for name in RISK_BAND_NAMES)})"

metadata: Final = sa.MetaData()

predictions_table: Final = sa.Table(
    "predictions",
    metadata,
    sa.Column("prediction_id", sa.String(36), primary_key=True),
    sa.Column("repo", sa.String(255), nullable=True),
    sa.Column("commit_sha", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(100), nullable=False),
    sa.Column("served", sa.Boolean(), nullable=False),
    sa.Column("shadow_of", sa.String(36), nullable=True),
    sa.Column("inputs", _JSON, nullable=False),
    sa.Column("score", sa.Double(), nullable=False),
    sa.Column("threshold", sa.Double(), nullable=False),
    sa.Column("risk_label", sa.SmallInteger(), nullable=False),
    sa.Column("risk_band", sa.String(8), nullable=False),
    sa.CheckConstraint("risk_label IN (0, 1)", name="ck_predictions_risk_label"),
    sa.CheckConstraint(RISK_BAND_CHECK, name="ck_predictions_risk_band"),
    sa.Index("ix_predictions_repo_sha", "repo", "commit_sha"),
    sa.Index("ix_predictions_created_at", "created_at"),
    sa.Index("ix_predictions_version_created", "model_version", "created_at"),
    sa.Index("ix_predictions_shadow_of", "shadow_of"),
)

feedback_table: Final = sa.Table(
    "feedback",
    metadata,
    sa.Column("feedback_id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("prediction_id", sa.String(36), sa.ForeignKey("predictions.prediction_id"), nullable=True),
    sa.Column("repo", sa.String(255), nullable=True),
    sa.Column("commit_sha", sa.String(64), nullable=True),
    sa.Column("label", sa.SmallInteger(), nullable=False),
    sa.Column("label_time", UTCDateTime(), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("superseded_at", UTCDateTime(), nullable=True),
    sa.Column("supersedes", sa.Integer(), sa.ForeignKey("feedback.feedback_id"), nullable=True),
    sa.CheckConstraint("label IN (0, 1)", name="ck_feedback_label"),
    sa.CheckConstraint(
        "(prediction_id IS NOT NULL AND repo IS NULL AND commit_sha IS NULL)"
        " OR (prediction_id IS NULL AND repo IS NOT NULL AND commit_sha IS NOT NULL)",
        name="ck_feedback_target",
    ),
    sa.Index("ix_feedback_prediction_id", "prediction_id"),
    sa.Index("ix_feedback_repo_sha", "repo", "commit_sha"),
    # At most one current label per target, enforced by the database even under concurrent writers.
    sa.Index(
        "uq_feedback_current_by_id",
        "prediction_id",
        unique=True,
        sqlite_where=_CURRENT,
        postgresql_where=_CURRENT,
    ),
    sa.Index(
        "uq_feedback_current_by_sha",
        "repo",
        "commit_sha",
        unique=True,
        sqlite_where=_CURRENT_BY_SHA,
        postgresql_where=_CURRENT_BY_SHA,
    ),
)

# Reviewer feedback ("was this right?"), apart from the labels: see defectops.predlog.reviews.
reviews_table: Final = sa.Table(
    "reviews",
    metadata,
    sa.Column("review_id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("prediction_id", sa.String(36), sa.ForeignKey("predictions.prediction_id"), nullable=False),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("reviewer", sa.String(128), nullable=True),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("verdict IN ('right', 'wrong')", name="ck_reviews_verdict"),
    sa.Index("ix_reviews_prediction_id", "prediction_id"),
)

# The three ways a prediction finds its label (see PredictionLog.window): own id, the served prediction it
# shadows, its commit. One alias object each, shared by the join and the selected columns.
FB_BY_ID: Final = feedback_table.alias("fb_id")
FB_BY_SHADOW: Final = feedback_table.alias("fb_shadow")
FB_BY_SHA: Final = feedback_table.alias("fb_sha")

#: The column order of the fast insert in :meth:`PredictionLog.record` (a test checks it covers the table).
INSERT_COLUMNS: Final[tuple[str, ...]] = (
    "prediction_id",
    "repo",
    "commit_sha",
    "created_at",
    "model_name",
    "model_version",
    "served",
    "shadow_of",
    "inputs",
    "score",
    "threshold",
    "risk_label",
    "risk_band",
)
