"""The one append-only audit store: the registry's alias moves and the heal loop's cycle records.

Two kinds of event, one store (:class:`AuditLog`): one database (``<workspace>/registry_audit.db`` by
default, any SQLAlchemy URL via ``DEFECTOPS_AUDIT_DB_URL``), one engine per URL per process, one JSON
encoding of evidence, one append and one query path. Each kind is a typed record with its own table:

- :class:`AuditEvent` (``alias_events``): who moved which alias of which model from which version to which,
  why, when, with what evidence. Written by :class:`defectops.registry.ModelRegistry` in the same
  transaction as the move; rollback reads the champion history from it.
- :class:`HealRecord` (``heal_events``): one decision of one self-healing cycle (step, outcome, reason,
  versions, evidence, the cycle's MLflow run), written by :mod:`defectops.pipeline.heal` as it happens.

Separate tables because the kinds have different columns and are read by different keys (alias moves by
registry, model and alias; cycle records by model, step and cycle); they are the tables earlier versions
created, unchanged, so existing audit databases are read as they are.

Why SQL rather than MLflow tags:

- a history is an ordered, append-only list; MLflow tags are a mutable key→value map per version, so the
  n-th move would have to be encoded in key names and could be overwritten or deleted from the UI;
- gate evidence (every criterion, the bootstrap interval) easily exceeds MLflow's tag value limits;
- rollback needs "the champion before the current one", which is one indexed query on a table;
- the MLflow database's schema belongs to MLflow's own alembic migrations: adding tables to it would be
  fragile, and with a remote tracking server we could not add them at all.

The current state stays visible in the MLflow UI through the aliases themselves and the ``defectops.status``
and ``defectops.gate`` tags on each version; the table is the history and the source of truth for rollback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    select,
)
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from defectops.console import redact_url
from defectops.errors import ConfigError, InputError, ModelError
from defectops.locks import exclusive

Action = Literal["register", "promote", "rollback", "archive"]
HealStep = Literal["start", "refresh", "watch", "gate", "monitor", "decide", "train", "blocks", "error"]

_metadata = MetaData()

alias_events = Table(
    "alias_events",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("registry", String(500), nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("who", String(256), nullable=False),
    Column("why", Text, nullable=False),
    Column("at", String(40), nullable=False),  # ISO-8601 in UTC, so it sorts and reads the same everywhere
    Column("evidence", Text, nullable=False),  # JSON document
    Index("ix_alias_events_lookup", "registry", "model_name", "alias", "id"),
)

heal_events = Table(
    "heal_events",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cycle_id", String(64), nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("at", String(40), nullable=False),  # ISO-8601 UTC, sorts as text
    Column("step", String(32), nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("champion_version", Integer, nullable=True),
    Column("challenger_version", Integer, nullable=True),
    Column("evidence", Text, nullable=False),  # JSON document
    Column("mlflow_run_id", String(64), nullable=True),
    Index("ix_heal_events_lookup", "model_name", "step", "id"),
)


class AuditEvent(BaseModel):
    """One alias move (or a decision that moved nothing, e.g. an archived challenger); ``id`` once stored.

    ``who`` and ``why`` are required: an event without them is refused (InputError).
    """

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    registry: str
    model_name: str
    alias: str
    action: Action
    from_version: int | None
    to_version: int | None
    who: str
    why: str
    at: datetime
    evidence: dict[str, Any]

    @field_validator("who", "why")
    @classmethod
    def _required(cls, value: str, info: Any) -> str:
        if not value.strip():
            what = "'who' (a user or service name)" if info.field_name == "who" else "'why' (a reason)"
            raise InputError(f"an audit record needs {what}")
        return value.strip()


class HealRecord(BaseModel):
    """One decision of one heal cycle, with the evidence (a JSON document) it rests on; ``id`` once stored."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    cycle_id: str
    model_name: str
    at: datetime
    step: HealStep
    outcome: str
    reason: str
    champion_version: int | None = None
    challenger_version: int | None = None
    evidence: dict[str, Any] = {}
    mlflow_run_id: str | None = None


Event = TypeVar("Event", AuditEvent, HealRecord)

_TABLES: dict[type[BaseModel], Table] = {AuditEvent: alias_events, HealRecord: heal_events}


def utc_iso(now: datetime) -> str:
    """``now`` as an ISO-8601 UTC string; naive datetimes are refused (their zone would be a guess)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError("timestamps must be timezone-aware (e.g. datetime.now(UTC))")
    return now.astimezone(UTC).isoformat(timespec="microseconds")


def evidence_json(evidence: Mapping[str, Any] | None) -> str:
    """``evidence`` as the JSON text an audit row stores (keys sorted; NaN and infinities refused)."""
    try:
        return json.dumps(dict(evidence or {}), sort_keys=True, default=str, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"evidence must be a JSON document without NaN/inf: {exc}") from exc


_engines: dict[str, Engine] = {}  # one engine (connection pool) per URL per process
_created: set[str] = set()  # URLs whose tables exist
_engines_lock = threading.Lock()


#: Seconds a PostgreSQL connection may take to be set up before it fails, rather than hang on a silent server.
CONNECT_TIMEOUT_SECONDS = 10


def _connect_args(url: str) -> dict[str, Any]:
    """SQLite waits up to 30 s for another writer's lock; PostgreSQL gives up connecting after a bound."""
    if url.startswith("sqlite"):
        return {"timeout": 30}
    if url.startswith("postgres"):
        return {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return {}


def _reason(exc: BaseException) -> str:
    """The database's own words, on one line, without SQLAlchemy's wrapper and its documentation link."""
    text = str(getattr(exc, "orig", None) or exc).split("(Background on this error at:", 1)[0]
    return " ".join(redact_url(text).split())


def _unavailable(what: str, url: str, exc: SQLAlchemyError | ImportError) -> ConfigError | ModelError:
    """A server that does not answer is ModelError (exit 6, HTTP 503: try again later); anything else (a
    malformed URL, a missing driver) a ConfigError."""
    message = f"{what} {redact_url(url)}: {_reason(exc)}"
    return ModelError(message) if isinstance(exc, OperationalError) else ConfigError(message)


def _engine(url: str) -> Engine:
    """The process's engine for the audit database at ``url``; its tables are created on first use."""
    with _engines_lock:
        engine = _engines.get(url)
        try:
            raw = url[len("sqlite:///") :].split("?", 1)[0] if url.startswith("sqlite:///") else ""
            local_file = raw not in {"", ":memory:"}
            if engine is None:
                if local_file:
                    Path(raw).parent.mkdir(parents=True, exist_ok=True)
                # pre-ping: a pooled connection the server dropped (a restart, a failover) is replaced, not
                # handed to the next read, which failed once per stale connection after the server was back.
                engine = create_engine(url, connect_args=_connect_args(url), pool_pre_ping=not local_file)
                _engines[url] = engine
            if url not in _created:
                # Two processes creating one fresh SQLite file raced ("table already exists"): create under a
                # lock beside it (another database serialises the DDL itself).
                if local_file:
                    with exclusive(Path(raw + ".lock"), what=f"creating the audit database {raw}"):
                        _metadata.create_all(engine)
                else:
                    _metadata.create_all(engine)
                _created.add(url)
        except (SQLAlchemyError, ImportError) as exc:
            raise _unavailable("cannot open the audit database", url, exc) from exc
        return engine


def _row(event: AuditEvent | HealRecord) -> dict[str, Any]:
    """The event as its table's row (without the id, which the database assigns)."""
    row = {name: getattr(event, name) for name in type(event).model_fields if name != "id"}
    row["at"] = utc_iso(event.at)
    row["evidence"] = evidence_json(event.evidence)
    return row


def _from_row(kind: type[Event], row: Mapping[str, Any]) -> Event:
    return kind.model_validate(
        {**row, "at": datetime.fromisoformat(row["at"]), "evidence": json.loads(row["evidence"])}
    )


class AuditLog:
    """The audit store at one SQLAlchemy URL: appends and reads events of either kind (tables created on
    first use)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def engine(self) -> Engine:
        return _engine(self.url)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction: events appended inside it are committed together, or not at all."""
        with self.engine.begin() as conn:
            yield conn

    def append(self, event: Event, *, conn: Connection | None = None) -> Event:
        """Store one event and return it as stored (with its id, its time in UTC, its evidence as JSON).

        Inside ``conn``'s transaction when given (the registry commits an alias move and its event together
        and handles a failure itself); otherwise in a transaction of its own, where a failure is a
        ConfigError.
        """
        row = _row(event)
        insert = _TABLES[type(event)].insert().values(**row)
        if conn is not None:
            key = conn.execute(insert).inserted_primary_key
        else:
            try:
                with self.transaction() as own:
                    key = own.execute(insert).inserted_primary_key
            except SQLAlchemyError as exc:
                raise _unavailable("the audit record could not be written to", self.url, exc) from exc
        if not key or key[0] is None:
            raise ConfigError(f"the audit database {self.url} returned no id for the new event")
        return _from_row(type(event), {**row, "id": int(key[0])})

    def events(self, kind: type[Event], model_name: str, **where: str | int | None) -> list[Event]:
        """Events of one kind and model, oldest first; ``where`` keeps those whose column has that value
        (a None value does not filter)."""
        return self._select(kind, model_name, None, where)

    def latest(
        self, kind: type[Event], model_name: str, count: int, **where: str | int | None
    ) -> list[Event]:
        """The newest ``count`` events of :meth:`events`, oldest first (the web UI's pages read a recent
        slice of a history that grows every cycle)."""
        return self._select(kind, model_name, max(count, 0), where)

    def _select(
        self, kind: type[Event], model_name: str, count: int | None, where: Mapping[str, str | int | None]
    ) -> list[Event]:
        table = _TABLES[kind]
        query = select(table).where(table.c.model_name == model_name)
        for column, value in where.items():
            if value is not None:
                query = query.where(table.c[column] == value)
        if count is not None:
            query = query.order_by(table.c.id.desc()).limit(count)
        else:
            query = query.order_by(table.c.id)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
        except SQLAlchemyError as exc:  # was raw: the web UI's pages answered 500 with a traceback
            raise _unavailable("cannot read the audit database", self.url, exc) from exc
        events = [_from_row(kind, dict(row)) for row in rows]
        return events[::-1] if count is not None else events
