"""The append-only audit table of alias moves (who, why, when, from-version, to-version, evidence).

Why a separate SQL database (``<workspace>/registry_audit.db`` by default, any SQLAlchemy URL via
``DEFECTOPS_AUDIT_DB_URL``) rather than MLflow tags:

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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
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
from sqlalchemy.exc import SQLAlchemyError

from defectops.errors import ConfigError, InputError

Action = Literal["register", "promote", "rollback", "archive"]

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


class AuditEvent(BaseModel):
    """One alias move (or a decision that moved nothing, e.g. an archived challenger), as stored."""

    model_config = ConfigDict(frozen=True)

    id: int
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
_created: set[tuple[str, MetaData]] = set()  # (URL, tables) already created
_engines_lock = threading.Lock()


def audit_engine(url: str, metadata: MetaData) -> Engine:
    """The process's engine for the audit database at ``url``; ``metadata``'s tables are created on first use.

    The registry's ``alias_events`` and the heal loop's ``heal_events`` (:mod:`defectops.pipeline.heal`) are
    both kept this way, by default in the same database, which then has one connection pool per process.
    """
    with _engines_lock:
        engine = _engines.get(url)
        try:
            if engine is None:
                if url.startswith("sqlite:///"):
                    raw = url[len("sqlite:///") :].split("?", 1)[0]
                    if raw and raw != ":memory:":
                        Path(raw).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
                _engines[url] = engine
            if (url, metadata) not in _created:
                metadata.create_all(engine)
                _created.add((url, metadata))
        except (SQLAlchemyError, ImportError) as exc:
            raise ConfigError(f"cannot open the audit database {url}: {exc}") from exc
        return engine


class AuditLog:
    """Reads and appends alias events; the table is created on first use."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def engine(self) -> Engine:
        return audit_engine(self.url, _metadata)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction: events appended inside it are committed together, or not at all."""
        with self.engine.begin() as conn:
            yield conn

    def append(
        self,
        conn: Connection,
        *,
        registry: str,
        model_name: str,
        alias: str,
        action: Action,
        from_version: int | None,
        to_version: int | None,
        who: str,
        why: str,
        now: datetime,
        evidence: Mapping[str, Any] | None,
    ) -> AuditEvent:
        """Insert one event inside ``conn``'s transaction and return it as stored."""
        if not who.strip():
            raise InputError("an audit record needs 'who' (a user or service name)")
        if not why.strip():
            raise InputError("an audit record needs 'why' (a reason)")
        document = evidence_json(evidence)
        row = {
            "registry": registry,
            "model_name": model_name,
            "alias": alias,
            "action": action,
            "from_version": from_version,
            "to_version": to_version,
            "who": who.strip(),
            "why": why.strip(),
            "at": utc_iso(now),
            "evidence": document,
        }
        result = conn.execute(alias_events.insert().values(**row))
        key = result.inserted_primary_key
        if not key or key[0] is None:
            raise ConfigError(f"the audit database {self.url} returned no id for the new event")
        return _event({**row, "id": int(key[0])})

    def history(self, *, registry: str, model_name: str, alias: str | None = None) -> list[AuditEvent]:
        """Events of one model (optionally one alias), oldest first."""
        query = select(alias_events).where(
            alias_events.c.registry == registry, alias_events.c.model_name == model_name
        )
        if alias is not None:
            query = query.where(alias_events.c.alias == alias)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(alias_events.c.id)).mappings().all()
        return [_event(dict(row)) for row in rows]


def _event(row: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        registry=row["registry"],
        model_name=row["model_name"],
        alias=row["alias"],
        action=row["action"],
        from_version=row["from_version"],
        to_version=row["to_version"],
        who=row["who"],
        why=row["why"],
        at=datetime.fromisoformat(row["at"]),
        evidence=json.loads(row["evidence"]),
    )
