"""Opening the prediction log: the database URL, the engine of each backend, and its transactions.

SQLite runs in WAL mode with the ``synchronous`` level of the chosen :data:`Durability`; PostgreSQL sessions
always get ``synchronous_commit=on``. :class:`Store` is the opened engine with the one way every reading and
writing module of the log runs a transaction.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from defectops.config import DEFAULT_DURABILITY, Durability
from defectops.errors import ConfigError, PredictionLogError
from defectops.predlog.schema import metadata

__all__ = [
    "DB_FILENAME",
    "DEFAULT_DURABILITY",
    "WRITE_OPTION",
    "Durability",
    "Store",
    "default_url",
    "open_engine",
]

DB_FILENAME: Final = "predictions.db"


#: The execution option that marks a write transaction (SQLite then begins with ``BEGIN IMMEDIATE``).
WRITE_OPTION: Final = "defectops_write"

_dumps: Final = functools.partial(json.dumps, allow_nan=False, separators=(",", ":"))


def default_url(workspace_root: str | os.PathLike[str]) -> str:
    """The embedded default: ``<workspace>/predictions.db`` (SQLite, WAL)."""
    return f"sqlite:///{(Path(workspace_root).expanduser().resolve() / DB_FILENAME).as_posix()}"


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
        write = bool(connection.get_execution_options().get(WRITE_OPTION, False))
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


#: Seconds a PostgreSQL connection may take to be set up before it fails (libpq's ``connect_timeout``), unless
#: the URL says otherwise (``?connect_timeout=N``, within :data:`CONNECT_TIMEOUT_RANGE`).
CONNECT_TIMEOUT_SECONDS = 10
#: The ``connect_timeout`` a URL may ask for: libpq treats less than 2 as 2, and 0 as "wait forever".
CONNECT_TIMEOUT_RANGE: Final = (2, 300)


def _connect_timeout(parsed: URL) -> tuple[URL, int]:
    """The URL without its ``connect_timeout`` parameter, and the bounded timeout it asks for (or the
    default)."""
    raw = parsed.query.get("connect_timeout")
    if raw is None:
        return parsed, CONNECT_TIMEOUT_SECONDS
    value = raw[-1] if isinstance(raw, tuple) else raw
    low, high = CONNECT_TIMEOUT_RANGE
    try:
        seconds = int(value)
    except ValueError:
        seconds = -1
    if not low <= seconds <= high:
        raise ConfigError(
            f"connect_timeout={value!r} in the prediction-log URL: use whole seconds from {low} to {high}"
        )
    return parsed.difference_update_query(["connect_timeout"]), seconds


def open_engine(url: str | URL, durability: Durability = DEFAULT_DURABILITY) -> Engine:
    """An engine for ``url``, configured for ``durability`` (see :meth:`PredictionLog.from_url`)."""
    if durability not in _SQLITE_SYNCHRONOUS:
        raise ConfigError(f"unknown durability {durability!r}: use kill or power-loss")
    parsed = _normalise_url(url)
    serializer = _dumps
    if parsed.get_backend_name() == "sqlite":
        folder = Path(parsed.database or "").parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a folder the system refuses is the user's to fix, not an internal error
            raise ConfigError(
                f"cannot create {folder} for the SQLite prediction log: {exc.strerror or exc}"
            ) from None
        engine = sa.create_engine(
            parsed,
            json_serializer=serializer,
            connect_args={"timeout": 30.0, "check_same_thread": False},
        )
        _configure_sqlite(engine, durability)
    else:
        # A server that accepts and never answers (a dead pooler, a black-holed route) is an error after the
        # connect timeout (libpq's connect_timeout covers the whole connection set-up), not a hang.
        parsed, connect_timeout = _connect_timeout(parsed)
        engine = sa.create_engine(
            parsed,
            json_serializer=serializer,
            pool_pre_ping=True,
            connect_args={"connect_timeout": connect_timeout},
        )
        _configure_postgres(engine)
    return engine


class Store:
    """An opened engine of the prediction log and its transactions (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with the password hidden (safe to log)."""
        return self.engine.url.render_as_string(hide_password=True)

    def create_tables(self) -> None:
        """Create missing tables and indexes, in a write transaction (serialised on SQLite).

        Two processes opening a new log at once (several service workers) can still collide on PostgreSQL's
        catalog; the loser retries once and then finds the tables.
        """
        for attempt in range(2):
            try:
                with self.engine.connect() as connection:
                    connection.execution_options(**{WRITE_OPTION: True})
                    with connection.begin():
                        metadata.create_all(connection, checkfirst=True)
                return
            except sa_exc.DBAPIError as error:
                if attempt == 0 and not isinstance(error, sa_exc.OperationalError):
                    continue
                self.engine.dispose()
                raise PredictionLogError(
                    f"cannot open the prediction log at {self.url}: {' '.join(str(error.orig).split())}"
                ) from error

    @contextmanager
    def transaction(self, *, write: bool, bulk_read: bool = False) -> Iterator[Connection]:
        """One transaction; PredictionLogError for database failures (IntegrityError passes through).

        ``bulk_read`` (window, counts): on PostgreSQL nested-loop joins are switched off for the transaction.
        Right after a bulk load, before autovacuum has analysed the tables, the planner believes them nearly
        empty and joins every prediction with every feedback row (measured: 20 s instead of 0.3 s for 30,000
        predictions); hash joins are right for these whole-window reads whatever the statistics say.
        """
        try:
            with self.engine.connect() as connection:
                if write:
                    connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    if bulk_read and connection.dialect.name == "postgresql":
                        connection.exec_driver_sql("SET LOCAL enable_nestloop = off")
                    yield connection
        except sa_exc.IntegrityError:
            raise
        except sa_exc.DBAPIError as error:
            raise PredictionLogError(f"prediction log {self.url} failed: {error.orig}") from error
