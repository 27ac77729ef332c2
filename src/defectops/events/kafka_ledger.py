"""The Kafka adapter's SQL ledger: the delivery ids seen, and one claim (lease) per record handed out.

Why SQL and not the broker: Kafka has no "set if absent" for delivery ids, and its consumer groups move whole
partitions only when a member's session expires (docs/events.md, "Kafka"). A row per record gives
per-record leases, attempts and the last error, the same state Redis keeps in its pending-entries list.

Every transaction is short. SQLite runs in WAL mode and begins every transaction with ``BEGIN IMMEDIATE``,
so a writer waits for the lock (busy timeout) instead of failing with SQLITE_BUSY halfway through.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from defectops.events.stream import StreamMessage

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

STATE_FILENAME = "events/kafka-state.db"

_metadata = sa.MetaData()
_deliveries = sa.Table(
    "defectops_kafka_deliveries",
    _metadata,
    sa.Column("topic", sa.String(255), primary_key=True),
    sa.Column("delivery_id", sa.String(255), primary_key=True),
    sa.Column("received_at", sa.Float, nullable=False, index=True),
)
_claims = sa.Table(
    "defectops_kafka_claims",
    _metadata,
    sa.Column("topic", sa.String(255), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("offset", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("delivery_id", sa.String(255), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("consumer", sa.String(255), nullable=False),
    sa.Column("leased_until", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("done", sa.Boolean, nullable=False, default=False),
)
_c = _claims.c


def default_state_url(workspace_root: Path) -> str:
    return f"sqlite:///{(workspace_root.expanduser().resolve() / STATE_FILENAME).as_posix()}"


def safe_url(url: str) -> str:
    """The URL without its password (safe to log)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "?"


def _open_engine(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        deadline = time.monotonic() + 30
        while True:  # two processes switching a new file to WAL at once: one sees "locked" briefly
            try:
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class ClaimLedger:
    """Delivery ids and claims of one topic (``message_id`` is ``"<partition>:<offset>"``)."""

    def __init__(self, url: str, *, topic: str, visibility: float, dedupe_seconds: float) -> None:
        self.topic = topic
        self._visibility = visibility
        self._dedupe_seconds = dedupe_seconds
        self._engine = _open_engine(url)
        self._last_expiry = 0.0

    def create_tables(self) -> None:
        """Create the ledger's tables unless they exist (not in ``__init__``: a database that is not up yet
        is waited out by a worker, as the stream's prepare step)."""
        _metadata.create_all(self._engine, checkfirst=True)

    def _row(self, message_id: str) -> tuple[Any, ...]:
        partition, offset = (int(part) for part in message_id.split(":"))
        return (_c.topic == self.topic, _c.partition == partition, _c.offset == offset)

    def seen(self, delivery_id: str) -> bool:
        with self._engine.connect() as connection:
            found = connection.execute(
                sa.select(_deliveries.c.delivery_id).where(
                    _deliveries.c.topic == self.topic, _deliveries.c.delivery_id == delivery_id
                )
            ).first()
        return found is not None

    def remember(self, delivery_id: str) -> bool:
        """Store the id; False when it was there already (a concurrent replay stored it first)."""
        now = time.time()
        if now - self._last_expiry >= 60:  # forget ids older than dedupe_hours, at most once a minute
            self._last_expiry = now
            with self._engine.begin() as connection:
                connection.execute(
                    _deliveries.delete().where(
                        _deliveries.c.topic == self.topic,
                        _deliveries.c.received_at < now - self._dedupe_seconds,
                    )
                )
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    _deliveries.insert().values(topic=self.topic, delivery_id=delivery_id, received_at=now)
                )
        except sa_exc.IntegrityError:
            return False
        return True

    def reclaim(self, consumer: str, count: int) -> list[StreamMessage]:
        """Claim records whose lease ran out unacknowledged (their worker died), oldest lease first."""
        now = time.time()
        found = []
        with self._engine.begin() as connection:
            rows = connection.execute(
                sa.select(_claims)
                .where(_c.topic == self.topic, _c.done.is_(False), _c.leased_until < now)
                .order_by(_c.leased_until, _c.partition, _c.offset)
                .limit(count)
            ).all()
            for row in rows:
                message_id = f"{row.partition}:{row.offset}"
                taken = connection.execute(
                    _claims.update()
                    .where(*self._row(message_id), _c.done.is_(False), _c.leased_until < now)
                    .values(consumer=consumer, leased_until=now + self._visibility, attempts=_c.attempts + 1)
                )
                if taken.rowcount == 1:
                    found.append(StreamMessage(message_id, row.delivery_id, row.body, int(row.attempts) + 1))
        return found

    def claim(self, consumer: str, message_id: str, delivery_id: str, body: str) -> StreamMessage | None:
        """Claim a record read from the topic; None when another worker holds (or finished) it."""
        partition, offset = (int(part) for part in message_id.split(":"))
        row = {"topic": self.topic, "partition": partition, "offset": offset, "delivery_id": delivery_id}
        lease = {"consumer": consumer, "leased_until": time.time() + self._visibility, "attempts": 1}
        try:
            with self._engine.begin() as connection:
                connection.execute(_claims.insert().values(**row, **lease, body=body, error=None, done=False))
        except sa_exc.IntegrityError:
            return None
        return StreamMessage(message_id, delivery_id, body, 1)

    def finish(self, message_id: str) -> int | None:
        """Mark the record done; the offset its partition may commit (its first record not done), if any."""
        partition = int(message_id.split(":")[0])
        where = (_c.topic == self.topic, _c.partition == partition)
        with self._engine.begin() as connection:
            connection.execute(_claims.update().where(*self._row(message_id)).values(done=True))
            first = connection.execute(sa.select(sa.func.min(_c.offset)).where(*where, _c.done.is_(False)))
            last = connection.execute(sa.select(sa.func.max(_c.offset)).where(*where, _c.done.is_(True)))
            first_open, last_done = first.scalar(), last.scalar()
        if first_open is not None:
            return int(first_open)
        return None if last_done is None else int(last_done) + 1

    def forget_done(self, partition: int, committed: int) -> None:
        """Drop old done rows below the committed offset (a lagging reader skips them till then)."""
        with self._engine.begin() as connection:
            connection.execute(
                _claims.delete().where(
                    _c.topic == self.topic,
                    _c.partition == partition,
                    _c.done.is_(True),
                    _c.offset < committed,
                    _c.leased_until < time.time() - self._dedupe_seconds,
                )
            )

    def note_error(self, message_id: str, error: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(_claims.update().where(*self._row(message_id)).values(error=error[:2000]))

    def last_error(self, message_id: str) -> str | None:
        with self._engine.begin() as connection:
            found = connection.execute(sa.select(_c.error).where(*self._row(message_id))).scalar()
        return None if found is None else str(found)

    def counts(self, committed: dict[int, int]) -> tuple[int, int]:
        """(records claimed and not done, records done at or past their partition's ``committed`` offset)."""
        with self._engine.begin() as connection:
            pending = connection.execute(
                sa.select(sa.func.count()).where(_c.topic == self.topic, _c.done.is_(False))
            ).scalar()
            ahead = sum(
                connection.execute(
                    sa.select(sa.func.count()).where(
                        _c.topic == self.topic, _c.partition == p, _c.done.is_(True), _c.offset >= offset
                    )
                ).scalar()
                or 0
                for p, offset in committed.items()
            )
        return int(pending or 0), int(ahead)

    def dispose(self) -> None:
        self._engine.dispose()
