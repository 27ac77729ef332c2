"""The prediction log: every answered prediction, and the late ground truth that joins it.

Why a SQL store: monitoring and retraining need, months later, exactly what the service answered (inputs,
score, model version, served or shadow) next to the label that arrived weeks after. SQLite in WAL mode in the
workspace is the embedded default (no server to run); PostgreSQL by URL for a service with several workers.

The durability guarantee (see docs/storage.md): :meth:`PredictionLog.record` returns only after the
transaction holding the whole batch has committed. The service answers a request only after ``record``
returned, so nothing that was answered can be lost by a graceful stop or by a kill of the process; a batch
that was not acknowledged is either wholly in the log or wholly absent. How far beyond a kill it holds is the
:data:`Durability` level: ``kill`` (the default; SQLite WAL with ``synchronous=NORMAL``: the commit is in the
WAL file, which the operating system keeps through a kill of the process, and is fsynced at checkpoints) or
``power-loss`` (SQLite ``synchronous=FULL``: every commit waits for an fsync). PostgreSQL always runs with
``synchronous_commit=on`` forced for every session (the commit waits for the server's WAL flush).

Feedback (labels) joins predictions by prediction id or by (repo, commit sha). It is idempotent and keeps its
history: the same label twice for the same target is one row; a different label supersedes the current one
(the latest received wins) and the older row stays with ``superseded_at`` set, so a monitoring run can be
replayed "as of" any past time.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Integral
from pathlib import Path
from typing import Any, Final, Literal

import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import to_json
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url

from defectops.data import PREDICTION_COLUMNS
from defectops.errors import ConfigError, InputError, NotFoundError, PredictionLogError

__all__ = [
    "DB_FILENAME",
    "INSERT_COLUMNS",
    "PREDICTION_COLUMNS",
    "FeedbackOutcome",
    "FeedbackRecord",
    "LogCounts",
    "PredictionLog",
    "PredictionLogError",
    "PredictionRecord",
    "StoredFeedback",
    "default_url",
]

DB_FILENAME: Final = "predictions.db"
FeedbackStatus = Literal["recorded", "duplicate", "replaced"]
InputValue = bool | int | float | str | None

_SHA_RE: Final = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_MAX_FEEDBACK_ATTEMPTS: Final = 5
_WRITE_OPTION: Final = "defectops_write"

#: Input names may not use the fixed columns of :meth:`PredictionLog.window` (:data:`PREDICTION_COLUMNS`,
#: defined in :mod:`defectops.data.columns`), so a window's columns never clash.
_RESERVED: Final = frozenset(PREDICTION_COLUMNS)
_BANDS: Final[dict[str, str]] = {"low": "low", "medium": "medium", "high": "high"}

#: How much an answered prediction survives: a kill of the service (``kill``), or also an operating-system
#: crash or power loss (``power-loss``). Only SQLite has the choice.
Durability = Literal["kill", "power-loss"]
DEFAULT_DURABILITY: Final[Durability] = "kill"


# --------------------------------------------------------------------------------------------------
# Typed records
# --------------------------------------------------------------------------------------------------


_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Input names that passed :func:`_check_input_name` (a service logs the same few names millions of times).
_CHECKED_NAMES: set[str] = set()
_CHECKED_NAMES_LIMIT: Final = 4096


def _canonical_uuid(value: object, what: str) -> str:
    if type(value) is str and _CANONICAL_UUID.fullmatch(value):
        return value  # already canonical text (what uuid.UUID would give back)
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"{what} must be a UUID, got {value!r}") from None


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _aware(value: datetime, what: str) -> datetime:
    """``_utc`` for arguments of the public methods: a naive or non-datetime value is an InputError."""
    if not isinstance(value, datetime):
        raise InputError(f"{what} must be a datetime, got {value!r}")
    try:
        return _utc(value, what)
    except ValueError as error:
        raise InputError(str(error)) from None


def _sha(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"commit_sha must be a string, got {value!r}")
    sha = value.strip().lower()
    if not _SHA_RE.match(sha):
        raise ValueError(f"commit_sha must be a full 40- or 64-character hex sha, got {value!r}")
    return sha


def _bad(message: str) -> InputError:
    return InputError(f"invalid prediction record: {message}")


def _probability(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not (0.0 <= number <= 1.0):  # also refuses NaN
        raise _bad(f"{what} must be a finite number in [0, 1], got {value!r}")
    return number


def _text(value: object, what: str, limit: int, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _bad(f"{what} must be a non-empty string of at most {limit} characters, got {value!r}")
    return value if type(value) is str else str.__str__(value)


def _check_input_name(name: object) -> None:
    if not isinstance(name, str) or not name or len(name) > 200:
        raise _bad(f"input name must be a string of 1-200 characters, got {name!r}")
    if name in _RESERVED:
        raise _bad(f"input name {name!r} is reserved for a prediction-log column")
    if len(_CHECKED_NAMES) < _CHECKED_NAMES_LIMIT:
        _CHECKED_NAMES.add(name)


def _input_value(name: str, value: object) -> InputValue:
    """A JSON scalar that round-trips exactly; numpy scalars are unwrapped, NaN and infinities refused."""
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise _bad(f"input {name!r} is {value}; only finite numbers can be logged")
        return value  # type: ignore[return-value]
    if kind is int or kind is str or kind is bool or value is None:
        return value  # type: ignore[return-value]
    # Subclasses (numpy.float64, IntEnum, ...) are stored as the plain value.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _input_value(name, float(value))
    if isinstance(value, str):
        return str(value)
    item = getattr(value, "item", None)  # numpy scalars that are no Python subclasses (int64, bool_)
    if callable(item):
        unwrapped = item()
        if type(unwrapped) in (float, int, str, bool):
            return _input_value(name, unwrapped)
    raise _bad(
        f"input {name!r} has type {kind.__name__}; only numbers, strings, booleans and null are logged"
    )


class CheckedInputs(dict[str, InputValue]):
    """Inputs that a schema already held to the log's rules: names of 1-200 characters that are no
    prediction-log column, values that are finite numbers, strings, booleans or null (plain Python types).

    :class:`PredictionRecord` takes these as they are instead of checking each value again (about half of
    its cost, i.e. milliseconds per 1,000-record request). Only code whose schema guarantees the rules builds
    them: the service, from :class:`defectops.serving.schemas.ChangeRecord` (a test checks that schema
    against the rules). Anything else passes a plain mapping and gets every name and value checked.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One logged prediction: what was asked, what was answered, and by which model.

    ``served`` is False for a shadow prediction (scored and logged, not returned). A shadow prediction may
    name the served prediction for the same input in ``shadow_of``, so feedback for the served id labels it
    too. ``risk_label`` is 1 exactly when ``score >= threshold`` (checked, so the log cannot contradict
    itself). ``inputs`` maps input (feature) names to JSON scalars.

    A dataclass validated in ``__post_init__`` rather than a pydantic model: the service builds one per
    answered record on the request path, and this is about twice as fast. Invalid values raise
    :class:`InputError`; ids and times are normalised (canonical UUID text, UTC).
    """

    prediction_id: str
    created_at: datetime
    model_name: str
    model_version: str
    served: bool
    inputs: Mapping[str, InputValue]
    score: float
    threshold: float
    risk_label: int
    risk_band: str  # "low" | "medium" | "high" (a StrEnum with those values is fine; stored as plain str)
    repo: str | None = None
    commit_sha: str | None = None
    shadow_of: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            set_(self, "prediction_id", _canonical_uuid(self.prediction_id, "prediction_id"))
            if self.shadow_of is not None:
                set_(self, "shadow_of", _canonical_uuid(self.shadow_of, "shadow_of"))
            if not isinstance(self.created_at, datetime):
                raise ValueError(f"created_at must be a datetime, got {self.created_at!r}")
            if self.created_at.tzinfo is not UTC:
                set_(self, "created_at", _utc(self.created_at, "created_at"))
            if self.commit_sha is not None:
                set_(self, "commit_sha", _sha(self.commit_sha))
        except ValueError as error:
            raise _bad(str(error)) from None
        # Plain built-in values only from here on: drivers bind str/int/bool subclasses (StrEnum, numpy
        # scalars) differently or not at all (psycopg writes an Enum's *name*).
        set_(self, "model_name", _text(self.model_name, "model_name", 200))
        set_(self, "model_version", _text(self.model_version, "model_version", 100))
        set_(self, "repo", _text(self.repo, "repo", 255, optional=True))
        served: object = self.served
        numpy_bool = not isinstance(served, int | float | str) and served in (True, False)
        if not isinstance(served, bool) and not numpy_bool:
            raise _bad(f"served must be a bool, got {served!r}")
        set_(self, "served", bool(served))
        set_(self, "score", _probability(self.score, "score"))
        set_(self, "threshold", _probability(self.threshold, "threshold"))
        label: object = self.risk_label
        if isinstance(label, bool) or not isinstance(label, Integral) or label not in (0, 1):
            raise _bad(f"risk_label must be 0 or 1, got {label!r}")
        set_(self, "risk_label", int(label))
        band = _BANDS.get(self.risk_band) if isinstance(self.risk_band, str) else None
        if band is None:
            raise _bad(f"risk_band must be low, medium or high, got {self.risk_band!r}")
        set_(self, "risk_band", band)
        if not isinstance(self.inputs, Mapping):
            raise _bad(f"inputs must be a mapping of input names to values, got {type(self.inputs).__name__}")
        if type(self.inputs) is CheckedInputs:
            inputs: dict[str, InputValue] = self.inputs  # checked by the schema that built it
        else:
            inputs = self._checked_inputs()
        set_(self, "inputs", inputs)
        expected = 1 if self.score >= self.threshold else 0
        if self.risk_label != expected:
            raise _bad(
                f"risk_label {self.risk_label} contradicts score {self.score} and threshold {self.threshold} "
                "(risk_label must be 1 exactly when score >= threshold)"
            )
        if self.served and self.shadow_of is not None:
            raise _bad("a served prediction cannot be the shadow of another (shadow_of needs served=False)")
        if self.commit_sha is not None and self.repo is None:
            raise _bad("commit_sha needs repo: feedback joins on (repo, commit_sha)")

    def _checked_inputs(self) -> dict[str, InputValue]:
        """A plain copy of the inputs with every name and value checked (numpy scalars unwrapped)."""
        inputs: dict[str, InputValue] = {}
        checked = _CHECKED_NAMES
        for name, value in self.inputs.items():
            if name not in checked:
                _check_input_name(name)
            kind = type(value)
            # The common cases inline (finite float: x - x is 0.0 only then), everything else checked fully.
            if (kind is float and value - value == 0.0) or kind is int or kind is str or kind is bool:  # type: ignore[operator]
                inputs[name] = value
            else:
                inputs[name] = _input_value(name, value)
        return inputs


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
        return None if value is None else _canonical_uuid(value, "prediction_id")

    @field_validator("commit_sha")
    @classmethod
    def _check_sha(cls, value: str | None) -> str | None:
        return _sha(value)

    @field_validator("label_time")
    @classmethod
    def _check_label_time(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _utc(value, "label_time")

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
    current one (``replaced_feedback_id``). ``matched_predictions`` counts the logged predictions of the
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


# --------------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------------


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
    sa.CheckConstraint("risk_band IN ('low', 'medium', 'high')", name="ck_predictions_risk_band"),
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

# The three ways a prediction finds its label (see PredictionLog.window): own id, the served prediction it
# shadows, its commit. One alias object each, shared by the join and the selected columns.
_FB_BY_ID: Final = feedback_table.alias("fb_id")
_FB_BY_SHADOW: Final = feedback_table.alias("fb_shadow")
_FB_BY_SHA: Final = feedback_table.alias("fb_sha")


# --------------------------------------------------------------------------------------------------
# Connection handling
# --------------------------------------------------------------------------------------------------


def default_url(workspace_root: Path) -> str:
    """The embedded default: ``<workspace>/predictions.db`` (SQLite, WAL)."""
    return f"sqlite:///{(workspace_root.expanduser().resolve() / DB_FILENAME).as_posix()}"


def _normalise_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as error:
        raise ConfigError(f"not a database URL: {error}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.get_driver_name() != "pysqlite":
            raise ConfigError(f"unsupported SQLite driver {parsed.drivername!r}; use sqlite:///PATH")
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:") or parsed.query:
            raise ConfigError(
                "the prediction log needs a SQLite file (sqlite:///PATH): an in-memory or URI database "
                "cannot keep the durability guarantee"
            )
        path = Path(database).expanduser().resolve()
        return parsed.set(drivername="sqlite+pysqlite", database=str(path))
    if backend == "postgresql":
        if parsed.drivername not in ("postgresql", "postgresql+psycopg"):
            raise ConfigError(
                f"unsupported PostgreSQL driver {parsed.drivername!r}; "
                "use postgresql+psycopg://... (psycopg 3)"
            )
        return parsed.set(drivername="postgresql+psycopg")
    raise ConfigError(
        f"unsupported prediction-log URL scheme {parsed.drivername!r}: use sqlite:///PATH or "
        "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
    )


_SQLITE_SYNCHRONOUS: Final[dict[str, str]] = {"kill": "NORMAL", "power-loss": "FULL"}


#: How long a connection keeps trying to switch a brand-new database to WAL while another one holds it.
_WAL_SWITCH_SECONDS: Final = 30.0


def _enter_wal(cursor: Any) -> str:
    """``PRAGMA journal_mode=WAL``, retried while the database is locked.

    Switching a new database file to WAL needs it to itself, and SQLite answers "database is locked" at once
    instead of waiting (its busy timeout does not cover this), so several workers opening a new log together
    could fail (seen in about 1 of 12 runs of four threads). An existing WAL database answers at once.
    """
    deadline = time.monotonic() + _WAL_SWITCH_SECONDS
    while True:
        try:
            return str(cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _configure_sqlite(engine: Engine, durability: Durability) -> None:
    """WAL, the synchronous level of ``durability`` and foreign keys on every connection; explicit BEGIN.

    In WAL mode ``synchronous=NORMAL`` never corrupts the database and loses no committed transaction when
    the process is killed (the WAL pages were written to the operating system before the commit returned);
    only an operating-system crash or power loss can take the last commits since a checkpoint.
    ``synchronous=FULL`` fsyncs the WAL at every commit, which every answer then waits for.

    pysqlite's own transaction handling is switched off (``isolation_level = None``) so that writes can start
    with ``BEGIN IMMEDIATE``: a read-then-write transaction (feedback) then takes the write lock up front and
    waits for it (busy timeout) instead of failing with SQLITE_BUSY when another writer committed meanwhile.
    Reads use a plain deferred ``BEGIN`` and never block writers in WAL mode.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            mode = _enter_wal(cursor)
            if str(mode).lower() != "wal":
                raise PredictionLogError(f"SQLite refused WAL mode (journal_mode={mode}); use a local disk")
            cursor.execute(f"PRAGMA synchronous={_SQLITE_SYNCHRONOUS[durability]}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = bool(connection.get_execution_options().get(_WRITE_OPTION, False))
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _configure_postgres(engine: Engine) -> None:
    """Force ``synchronous_commit=on`` per session: a server-wide ``off`` must not weaken the guarantee."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO on")
                cursor.execute("SET TIME ZONE 'UTC'")
        finally:
            dbapi_connection.autocommit = autocommit


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
_COPY_MIN_ROWS: Final = 16  # below this, one multi-row INSERT round trip is as fast as COPY's set-up
_dumps: Final = functools.partial(json.dumps, allow_nan=False, separators=(",", ":"))


def _inputs_json(inputs: Mapping[str, InputValue]) -> str:
    """Compact JSON of a record's inputs (validated finite scalars), about four times faster than
    :func:`json.dumps` (pydantic-core's serializer); the same values come back from ``json.loads``."""
    return to_json(inputs).decode()


def _duplicate_error(cause: object) -> InputError:
    return InputError(f"a prediction id of this batch is already in the log; nothing was written ({cause})")


def _insert_sql(dialect: str) -> str:
    """The driver-level INSERT of one prediction row (qmark for sqlite3, format for psycopg)."""
    names = ", ".join(INSERT_COLUMNS)
    if dialect == "sqlite":
        values = ", ".join("?" for _ in INSERT_COLUMNS)
    else:
        values = ", ".join("%s::jsonb" if name == "inputs" else "%s" for name in INSERT_COLUMNS)
    return f"INSERT INTO predictions ({names}) VALUES ({values})"


def _record_from_row(row: sa.Row[Any]) -> PredictionRecord:
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


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


class PredictionLog:
    """The prediction store (SQLAlchemy Core; SQLite or PostgreSQL). Thread-safe; one instance per process."""

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine made by :meth:`from_url` (which configures durability); use that instead."""
        self._engine = engine
        self._insert_sql = _insert_sql(engine.dialect.name)

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str | URL, durability: Durability = DEFAULT_DURABILITY) -> PredictionLog:
        """Open (and create the tables of) the log at ``url``.

        ``sqlite:///PATH`` (parent folders are created) or ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB``
        (``postgresql://`` means the same). ``durability`` applies to SQLite (see :data:`Durability`). Raises
        :class:`ConfigError` for anything else and :class:`PredictionLogError` when the database cannot be
        reached.
        """
        if durability not in _SQLITE_SYNCHRONOUS:
            raise ConfigError(f"unknown durability {durability!r}: use kill or power-loss")
        parsed = _normalise_url(url)
        serializer = _dumps
        if parsed.get_backend_name() == "sqlite":
            Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                parsed,
                json_serializer=serializer,
                connect_args={"timeout": 30.0, "check_same_thread": False},
            )
            _configure_sqlite(engine, durability)
        else:
            engine = sa.create_engine(parsed, json_serializer=serializer, pool_pre_ping=True)
            _configure_postgres(engine)
        log = cls(engine)
        log._create_tables()
        return log

    def _create_tables(self) -> None:
        """Create missing tables and indexes, in a write transaction (serialised on SQLite).

        Two processes opening a new log at once (several service workers) can still collide on PostgreSQL's
        catalog; the loser retries once and then finds the tables.
        """
        for attempt in range(2):
            try:
                with self._engine.connect() as connection:
                    connection.execution_options(**{_WRITE_OPTION: True})
                    with connection.begin():
                        metadata.create_all(connection, checkfirst=True)
                return
            except sa_exc.DBAPIError as error:
                if attempt == 0 and not isinstance(error, sa_exc.OperationalError):
                    continue
                self._engine.dispose()
                raise PredictionLogError(
                    f"cannot open the prediction log at {self.url}: {error.orig}"
                ) from error

    @classmethod
    def for_workspace(cls, workspace_root: Path) -> PredictionLog:
        """The embedded default store of a workspace (``<workspace>/predictions.db``)."""
        return cls.from_url(default_url(workspace_root))

    @property
    def url(self) -> str:
        """The database URL with the password hidden (safe to log)."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for inspection and migrations; writes should go through this class."""
        return self._engine

    def close(self) -> None:
        """Close every pooled connection (SQLite then checkpoints its WAL into the database file)."""
        self._engine.dispose()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, *, write: bool, bulk_read: bool = False) -> Iterator[Connection]:
        """One transaction; PredictionLogError for database failures (IntegrityError passes through).

        ``bulk_read`` (window, counts): on PostgreSQL nested-loop joins are switched off for the transaction.
        Right after a bulk load, before autovacuum has analysed the tables, the planner believes them nearly
        empty and joins every prediction with every feedback row (measured: 20 s instead of 0.3 s for 30,000
        predictions); hash joins are right for these whole-window reads whatever the statistics say.
        """
        try:
            with self._engine.connect() as connection:
                if write:
                    connection.execution_options(**{_WRITE_OPTION: True})
                with connection.begin():
                    if bulk_read and connection.dialect.name == "postgresql":
                        connection.exec_driver_sql("SET LOCAL enable_nestloop = off")
                    yield connection
        except sa_exc.IntegrityError:
            raise
        except sa_exc.DBAPIError as error:
            raise PredictionLogError(f"prediction log {self.url} failed: {error.orig}") from error

    # -- predictions --------------------------------------------------------------------------------

    def record(self, batch: Sequence[PredictionRecord]) -> int:
        """Write a batch of predictions in one transaction; return the number written, after the commit.

        This is the durability point: when it returns, every row of the batch is committed and flushed; when
        it raises, none is. Prediction ids must be new (a repeated id raises :class:`InputError`, nothing is
        written).

        The insert bypasses SQLAlchemy's per-row type processing (it is on the service's request path): values
        are prepared here exactly as the column types would store them (SQLite: UTC text in SQLAlchemy's own
        DATETIME format, so comparisons with SQLAlchemy-bound times stay correct; PostgreSQL: timestamptz).
        """
        if not batch:
            return 0
        sqlite = self._engine.dialect.name == "sqlite"
        seen: set[str] = set()
        rows: list[tuple[Any, ...]] = []
        dumps = _inputs_json
        stamps: dict[datetime, str] = {}  # a batch usually shares one time: format it once
        for item in batch:
            if not isinstance(item, PredictionRecord):
                raise InputError(f"record() takes PredictionRecord objects, got {type(item).__name__}")
            if item.prediction_id in seen:
                raise InputError(f"prediction id {item.prediction_id} appears twice in one batch")
            seen.add(item.prediction_id)
            created_at: Any = item.created_at
            if sqlite:
                text = stamps.get(created_at)
                if text is None:
                    text = stamps[created_at] = created_at.replace(tzinfo=None).isoformat(" ", "microseconds")
                created_at = text
            rows.append(
                (
                    item.prediction_id,
                    item.repo,
                    item.commit_sha,
                    created_at,
                    item.model_name,
                    item.model_version,
                    item.served,
                    item.shadow_of,
                    dumps(item.inputs),
                    item.score,
                    item.threshold,
                    item.risk_label,
                    item.risk_band,
                )
            )
        try:
            with self._transaction(write=True) as connection:
                if not sqlite and len(rows) >= _COPY_MIN_ROWS:
                    self._copy_rows(connection, rows)
                else:
                    connection.exec_driver_sql(self._insert_sql, rows)
        except sa_exc.IntegrityError as error:
            raise _duplicate_error(error.orig) from error
        return len(rows)

    def _copy_rows(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        """PostgreSQL ``COPY ... FROM STDIN`` in the batch's transaction (about twice executemany's speed)."""
        import psycopg  # only PostgreSQL users load the driver

        driver = connection.connection.driver_connection
        if driver is None:
            raise PredictionLogError(f"prediction log {self.url}: the database connection was closed")
        try:
            with (
                driver.cursor() as cursor,
                cursor.copy(f"COPY predictions ({', '.join(INSERT_COLUMNS)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        except psycopg.errors.IntegrityError as error:
            raise _duplicate_error(error) from error
        except psycopg.Error as error:
            raise PredictionLogError(f"prediction log {self.url} failed: {error}") from error

    def get(self, prediction_id: str) -> PredictionRecord:
        """One logged prediction by id (:class:`NotFoundError` if it was never logged)."""
        canonical = self._id_or_input_error(prediction_id)
        with self._transaction(write=False) as connection:
            row = connection.execute(
                sa.select(predictions_table).where(predictions_table.c.prediction_id == canonical)
            ).one_or_none()
        if row is None:
            raise NotFoundError(f"no logged prediction with id {canonical}")
        return _record_from_row(row)

    def by_commit(self, repo: str, commit_sha: str) -> list[PredictionRecord]:
        """Every prediction logged for one commit (served and shadow), oldest first."""
        sha = self._sha_or_input_error(commit_sha)
        table = predictions_table
        with self._transaction(write=False) as connection:
            rows = connection.execute(
                sa.select(table)
                .where(table.c.repo == repo, table.c.commit_sha == sha)
                .order_by(table.c.created_at, table.c.prediction_id)
            ).all()
        return [_record_from_row(row) for row in rows]

    # -- feedback -----------------------------------------------------------------------------------

    def add_feedback(self, feedback: FeedbackRecord, *, now: datetime) -> FeedbackOutcome:
        """Record one label (see :meth:`add_feedback_batch`)."""
        return self.add_feedback_batch([feedback], now=now)[0]

    def add_feedback_batch(self, batch: Sequence[FeedbackRecord], *, now: datetime) -> list[FeedbackOutcome]:
        """Record labels idempotently, all in one transaction, received at ``now``.

        Per target (prediction id, or repo + sha): the same label as the current one is a no-op
        (``duplicate``); a different label supersedes it (``replaced``: the old row gets
        ``superseded_at = now`` and stays as history, the new row names it in ``supersedes``); the latest
        received label wins. Feedback by id for a prediction that was never logged raises
        :class:`NotFoundError` and nothing of the batch is written; feedback by commit is accepted even before
        any prediction of that commit was logged.
        """
        received_at = _aware(now, "now")
        if not batch:
            return []
        last_error: sa_exc.IntegrityError | None = None
        for _attempt in range(_MAX_FEEDBACK_ATTEMPTS):
            try:
                with self._transaction(write=True) as connection:
                    self._lock_targets(connection, batch)
                    return [self._apply_feedback(connection, item, received_at) for item in batch]
            except sa_exc.IntegrityError as error:
                # The locks make this unreachable in normal operation; the unique index is the last line of
                # defence (e.g. a writer that does not take the locks), and a retry then sees its row.
                last_error = error
        raise PredictionLogError(
            f"feedback kept conflicting with concurrent writers after {_MAX_FEEDBACK_ATTEMPTS} attempts: "
            f"{last_error.orig if last_error else ''}"
        )

    def _lock_targets(self, connection: Connection, batch: Sequence[FeedbackRecord]) -> None:
        """Serialise feedback writers per target (PostgreSQL; SQLite's BEGIN IMMEDIATE already does).

        Read-then-write on the current label would otherwise race under READ COMMITTED: two writers both see
        no current row and both insert. Transaction-scoped advisory locks on a hash of each target, taken in
        sorted order (no deadlock between batches), make the second writer wait and then see the first's row.
        """
        if self._engine.dialect.name != "postgresql":
            return
        keys = sorted(
            {
                f"id:{item.prediction_id}" if item.prediction_id else f"sha:{item.repo}:{item.commit_sha}"
                for item in batch
            }
        )
        for key in keys:
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0))))

    def _apply_feedback(
        self, connection: Connection, item: FeedbackRecord, received_at: datetime
    ) -> FeedbackOutcome:
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
            sa.select(fb.c.feedback_id, fb.c.label, fb.c.received_at)
            .where(target, fb.c.superseded_at.is_(None))
            .with_for_update()
        ).first()
        if current is not None and current.label == item.label:
            return FeedbackOutcome(int(current.feedback_id), "duplicate", None, matched)
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

    def feedback_history(
        self,
        *,
        prediction_id: str | None = None,
        repo: str | None = None,
        commit_sha: str | None = None,
    ) -> list[StoredFeedback]:
        """Every feedback row of one target (current and superseded), in the order received."""
        fb = feedback_table
        if prediction_id is not None and repo is None and commit_sha is None:
            where = fb.c.prediction_id == self._id_or_input_error(prediction_id)
        elif prediction_id is None and repo is not None and commit_sha is not None:
            sha = self._sha_or_input_error(commit_sha)
            where = sa.and_(fb.c.prediction_id.is_(None), fb.c.repo == repo, fb.c.commit_sha == sha)
        else:
            raise InputError("feedback_history needs prediction_id, or repo and commit_sha")
        with self._transaction(write=False) as connection:
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

    # -- reading for monitoring ---------------------------------------------------------------------

    def window(
        self,
        since: datetime,
        until: datetime,
        *,
        model_version: str | None = None,
        model_name: str | None = None,
        served: bool | None = None,
        as_of: datetime | None = None,
        labeled_only: bool = False,
    ) -> pd.DataFrame:
        """Predictions created in ``[since, until)`` with inputs as columns and their labels joined.

        Columns: :data:`PREDICTION_COLUMNS` (``label`` is nullable ``Int64``; times are UTC), then one column
        per input name, sorted by name (listed in ``frame.attrs["feature_columns"]``); rows ordered by
        ``created_at``, then id. A prediction's label is, in this order of precedence, the current feedback
        for its own id, for the prediction it shadows (``shadow_of``), or for its (repo, commit_sha).
        ``as_of`` replays the past: only feedback received at or before it, as it stood then.
        """
        where = self._prediction_filter(since, until, model_version, model_name, served)
        columns = self._labelled_columns(as_of)
        table = predictions_table
        sqlite = self._engine.dialect.name == "sqlite"

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
            .select_from(self._labelled_join(as_of))
            .where(*where)
            .order_by(table.c.created_at, table.c.prediction_id)
        )
        if labeled_only:
            statement = statement.where(columns[0].is_not(None))
        with self._transaction(write=False, bulk_read=True) as connection:
            rows = connection.execute(statement).all()
        if rows:
            *values, inputs_text = (list(column) for column in zip(*rows, strict=True))
        else:
            values, inputs_text = [[] for _ in PREDICTION_COLUMNS], []
        frame = _frame_dtypes(pd.DataFrame(dict(zip(PREDICTION_COLUMNS, values, strict=True))))
        inputs: list[dict[str, InputValue]] = json.loads("[" + ",".join(inputs_text) + "]")
        features = pd.DataFrame.from_records(inputs) if inputs else pd.DataFrame()
        feature_columns = sorted(str(name) for name in features.columns)
        if feature_columns:
            frame = pd.concat([frame, features[feature_columns]], axis=1)
        frame.attrs["feature_columns"] = feature_columns
        return frame

    def joined(
        self,
        since: datetime,
        until: datetime,
        *,
        model_version: str | None = None,
        model_name: str | None = None,
        served: bool | None = None,
        as_of: datetime | None = None,
    ) -> pd.DataFrame:
        """Only the labelled predictions of :meth:`window` (same columns): input of realised performance."""
        return self.window(
            since,
            until,
            model_version=model_version,
            model_name=model_name,
            served=served,
            as_of=as_of,
            labeled_only=True,
        )

    def counts(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        as_of: datetime | None = None,
    ) -> LogCounts:
        """How many predictions (served, shadow, labelled, per model version) and feedback rows there are."""
        table = predictions_table
        where: list[sa.ColumnElement[bool]] = []
        if since is not None:
            where.append(table.c.created_at >= _aware(since, "since"))
        if until is not None:
            where.append(table.c.created_at < _aware(until, "until"))
        label = self._labelled_columns(as_of)[0]
        with self._transaction(write=False, bulk_read=True) as connection:
            totals = connection.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(sa.case((table.c.served, 1), else_=0)), 0),
                    sa.func.count(label),
                )
                .select_from(self._labelled_join(as_of))
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

    # -- query helpers ------------------------------------------------------------------------------

    @staticmethod
    def _prediction_filter(
        since: datetime,
        until: datetime,
        model_version: str | None,
        model_name: str | None,
        served: bool | None,
    ) -> list[sa.ColumnElement[bool]]:
        since, until = _aware(since, "since"), _aware(until, "until")
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

    @staticmethod
    def _current(alias: sa.FromClause, as_of: datetime | None) -> sa.ColumnElement[bool]:
        if as_of is None:
            return alias.c.superseded_at.is_(None)
        moment = _aware(as_of, "as_of")
        return sa.and_(
            alias.c.received_at <= moment,
            sa.or_(alias.c.superseded_at.is_(None), alias.c.superseded_at > moment),
        )

    @classmethod
    def _labelled_join(cls, as_of: datetime | None) -> sa.FromClause:
        table = predictions_table
        by_id, by_shadow, by_sha = _FB_BY_ID, _FB_BY_SHADOW, _FB_BY_SHA
        return (
            table.outerjoin(
                by_id,
                sa.and_(by_id.c.prediction_id == table.c.prediction_id, cls._current(by_id, as_of)),
            )
            .outerjoin(
                by_shadow,
                sa.and_(by_shadow.c.prediction_id == table.c.shadow_of, cls._current(by_shadow, as_of)),
            )
            .outerjoin(
                by_sha,
                sa.and_(
                    by_sha.c.prediction_id.is_(None),
                    by_sha.c.repo == table.c.repo,
                    by_sha.c.commit_sha == table.c.commit_sha,
                    cls._current(by_sha, as_of),
                ),
            )
        )

    @classmethod
    def _labelled_columns(cls, as_of: datetime | None) -> list[sa.ColumnElement[Any]]:
        by_id, by_shadow, by_sha = _FB_BY_ID, _FB_BY_SHADOW, _FB_BY_SHA
        del as_of  # the join carries the as-of condition; the columns only pick by precedence

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

    @staticmethod
    def _id_or_input_error(prediction_id: str) -> str:
        try:
            return _canonical_uuid(prediction_id, "prediction_id")
        except ValueError as error:
            raise InputError(str(error)) from None

    @staticmethod
    def _sha_or_input_error(commit_sha: str) -> str:
        try:
            sha = _sha(commit_sha)
        except ValueError as error:
            raise InputError(str(error)) from None
        return sha or ""
