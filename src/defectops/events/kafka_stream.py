"""Kafka behind :class:`~defectops.events.stream.EventStream`: the topic is the log, SQL holds the claims.

Why not Kafka's consumer-group rebalancing for the "pending" state: a group hands whole partitions to members
and only moves them when a member's session expires, and the Kafka-protocol broker these machines can run
(Tansu, see docs/events.md) did not hand a killed member's partitions to a new member within 60 s in our
trials. So the adapter uses Kafka for what every Kafka-protocol broker does well, and a small SQL table for
the rest:

* **The log.** Events go to topic ``T`` (the ``stream`` setting with characters Kafka refuses replaced by
  ``.``), keyed by the publisher's key (the repository: its events stay in one partition, in order), with
  the delivery id in a record header, ``acks=all`` and the idempotent producer. :meth:`publish` returns
  after the broker acknowledged the record. Dead letters go to ``T.dead`` with the reason in the value.
* **Delivery ids** (``deliveries`` table). :meth:`publish` inserts the id and produces inside one database
  transaction: a replay finds the id and stores nothing. A receiver killed after the broker's
  acknowledgement and before the commit leaves the event in the topic without its id, so only a redelivery of
  that very webhook can store it a second time (the workers' effects are idempotent).
* **Claims** (``claims`` table, one row per record handed out). Every worker reads every partition from the
  group's committed offset (manual assignment, no group membership) and claims a record by inserting its row;
  the row's lease runs for the visibility timeout. A record whose lease ran out unacknowledged (its worker
  died) is claimed again by the next worker that asks, and ``attempts`` counts the deliveries. :meth:`ack`
  marks the row done and commits the group's offset up to the first record not done in that partition.

Receivers and workers must reach the same SQL database: the workspace's SQLite file on one machine, a
PostgreSQL URL (``kafka_state_url``) across machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from defectops.errors import ConfigError, EventStreamError
from defectops.events.stream import StreamMessage, StreamStats

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from defectops.config import EventsSettings

STATE_FILENAME = "events/kafka-state.db"
_DELIVERY_HEADER = "delivery"

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


def topic_name(stream: str) -> str:
    """The Kafka topic of a stream setting (Kafka allows letters, digits, ``.``, ``_`` and ``-``)."""
    return re.sub(r"[^A-Za-z0-9._-]", ".", stream)[:200]


def default_state_url(workspace_root: Path) -> str:
    return f"sqlite:///{(workspace_root.expanduser().resolve() / STATE_FILENAME).as_posix()}"


def _open_engine(url: str) -> Engine:
    """The state database; SQLite in WAL mode with every transaction ``BEGIN IMMEDIATE`` (all are short writes
    or reads of a few rows, and taking the write lock up front waits instead of failing with SQLITE_BUSY)."""
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


class KafkaEventStream:
    """At-least-once delivery through a Kafka topic, with claims and delivery ids in SQL (thread-safe)."""

    def __init__(self, settings: EventsSettings, state_url: str) -> None:
        self.topic = topic_name(settings.stream)
        self.dead = f"{self.topic}.dead"
        self.group = settings.group
        self._servers = [s.strip() for s in settings.kafka_servers.split(",") if s.strip()]
        self._partitions = settings.kafka_partitions
        self._visibility = float(settings.visibility_timeout)
        self._dedupe_seconds = max(1.0, settings.dedupe_hours * 3600)
        self._where = f"kafka://{','.join(self._servers)}/{self.topic}"
        self._engine = _open_engine(state_url)
        self._lock = threading.RLock()
        self._producer: Any = None
        self._reader: Any = None  # this process's consumer of every partition (manual assignment)
        self._probe: Any = None  # offsets and the dead letters, never assigned for reading
        self._last_expiry = 0.0

    @classmethod
    def connect(cls, settings: EventsSettings, *, workspace: Path | None = None) -> KafkaEventStream:
        url = settings.kafka_state_url
        if url is None:
            if workspace is None:
                raise ConfigError("the Kafka stream needs DEFECTOPS_EVENTS_KAFKA_STATE_URL or a workspace")
            url = default_state_url(workspace)
        try:
            stream = cls(settings, url)
            _metadata.create_all(stream._engine, checkfirst=True)
            stream.ensure_topics()
        except ImportError:
            raise ConfigError(
                "the Kafka stream needs the kafka extra: pip install 'defectops[kafka]'"
            ) from None
        except (sa_exc.SQLAlchemyError, OSError, ValueError) as exc:
            raise EventStreamError(f"event stream {_safe(url)}: {type(exc).__name__}: {exc}") from None
        return stream

    # -- clients ------------------------------------------------------------------------------------------

    def _fail(self, what: str, exc: Exception) -> EventStreamError:
        return EventStreamError(f"event stream {self._where}: {what} failed: {type(exc).__name__}: {exc}")

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """One line (EventStreamError) for a broker or database failure, under the stream's lock."""
        from kafka.errors import KafkaError

        with self._lock:
            try:
                yield
            except (KafkaError, sa_exc.SQLAlchemyError) as exc:
                raise self._fail(what, exc) from None

    def _common(self) -> dict[str, Any]:
        return {"bootstrap_servers": self._servers, "request_timeout_ms": 30000}

    def ensure_topics(self) -> None:
        """Create the topic and its dead-letter topic unless they exist."""
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import KafkaError, TopicAlreadyExistsError

        try:
            admin = KafkaAdminClient(**self._common())
        except KafkaError as exc:
            raise self._fail("connect", exc) from None
        try:
            existing = set(admin.list_topics())
            wanted = [
                NewTopic(name, self._partitions if name == self.topic else 1, 1)
                for name in (self.topic, self.dead)
                if name not in existing
            ]
            if wanted:
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(wanted)
        except KafkaError as exc:
            raise self._fail("create topics", exc) from None
        finally:
            admin.close()

    def _producer_client(self) -> Any:
        from kafka import KafkaProducer

        if self._producer is None:
            self._producer = KafkaProducer(
                **self._common(), acks="all", enable_idempotence=True, linger_ms=0, retries=5
            )
        return self._producer

    def _consumer(self, **extra: Any) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(**self._common(), enable_auto_commit=False, **extra)

    def _reader_client(self) -> Any:
        if self._reader is None:
            reader = self._consumer(group_id=self.group, auto_offset_reset="earliest")
            partitions = self._partitions_of(reader, self.topic)
            if not partitions:
                reader.close()
                raise EventStreamError(f"event stream {self._where}: the topic has no partitions")
            reader.assign(partitions)
            self._reader = reader
        return self._reader

    def _probe_client(self) -> Any:
        if self._probe is None:
            self._probe = self._consumer(group_id=self.group)
        return self._probe

    def _partitions_of(self, client: Any, topic: str) -> list[Any]:
        from kafka import TopicPartition

        return [TopicPartition(topic, p) for p in sorted(client.partitions_for_topic(topic) or ())]

    # -- publishing ---------------------------------------------------------------------------------------

    def publish(self, delivery_id: str, body: str, *, key: str | None = None) -> bool:
        now = time.time()
        with self._guard("publish"):
            self._expire(now)
            with self._engine.begin() as connection:
                try:
                    connection.execute(
                        _deliveries.insert().values(
                            topic=self.topic, delivery_id=delivery_id, received_at=now
                        )
                    )
                except sa_exc.IntegrityError:
                    return False
                # the id commits only after the broker stored the record (acks=all)
                self._producer_client().send(
                    self.topic,
                    key=(key or delivery_id).encode(),
                    value=body.encode(),
                    headers=[(_DELIVERY_HEADER, delivery_id.encode())],
                ).get(timeout=30)
        return True

    async def publish_async(self, delivery_id: str, body: str, *, key: str | None = None) -> bool:
        # kafka-python and the SQL driver block: one thread hop per webhook
        return await asyncio.to_thread(self.publish, delivery_id, body, key=key)

    def _expire(self, now: float) -> None:
        """Forget delivery ids older than ``dedupe_hours`` (at most once a minute)."""
        if now - self._last_expiry < 60:
            return
        self._last_expiry = now
        with self._engine.begin() as connection:
            connection.execute(
                _deliveries.delete().where(
                    _deliveries.c.topic == self.topic,
                    _deliveries.c.received_at < now - self._dedupe_seconds,
                )
            )

    # -- consuming ----------------------------------------------------------------------------------------

    def receive(self, consumer: str, *, count: int, block_ms: int) -> list[StreamMessage]:
        with self._guard("receive"):
            messages = self._reclaim(consumer, count)
            if messages:
                return messages
            reader = self._reader_client()
            deadline = time.monotonic() + block_ms / 1000
            while True:
                left = max(0, int((deadline - time.monotonic()) * 1000))
                for records in reader.poll(timeout_ms=left, max_records=count).values():
                    for record in records:
                        claimed = self._claim_new(consumer, record)
                        if claimed is not None:
                            messages.append(claimed)
                if messages or (time.monotonic() >= deadline and not self._unread(reader, deadline)):
                    return messages

    def _unread(self, reader: Any, deadline: float) -> bool:
        """Whether the topic holds records this reader has not fetched yet (a fresh consumer's first fetch
        can take longer than ``block_ms``): keep polling then, for up to 30 s, so that an empty answer
        means "nothing to read", as with Redis."""
        if time.monotonic() > deadline + 30:
            return False
        assigned = list(reader.assignment())
        ends = reader.end_offsets(assigned)
        return any(reader.position(tp) < ends[tp] for tp in assigned)

    def _reclaim(self, consumer: str, count: int) -> list[StreamMessage]:
        """Claim records whose lease ran out unacknowledged (their worker died), oldest first."""
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
                taken = connection.execute(
                    _claims.update()
                    .where(
                        *self._row(f"{row.partition}:{row.offset}"), _c.done.is_(False), _c.leased_until < now
                    )
                    .values(consumer=consumer, leased_until=now + self._visibility, attempts=_c.attempts + 1)
                )
                if taken.rowcount == 1:
                    message_id = f"{row.partition}:{row.offset}"
                    found.append(StreamMessage(message_id, row.delivery_id, row.body, int(row.attempts) + 1))
        return found

    def _claim_new(self, consumer: str, record: Any) -> StreamMessage | None:
        """Claim a record read from the topic; None when another worker holds (or finished) it."""
        headers = dict(record.headers or ())
        raw = headers.get(_DELIVERY_HEADER, record.key)  # records without the header: the key is the id
        delivery = raw.decode() if raw is not None else ""
        body = record.value.decode() if record.value is not None else ""
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    _claims.insert().values(
                        topic=self.topic,
                        partition=record.partition,
                        offset=record.offset,
                        delivery_id=delivery,
                        body=body,
                        consumer=consumer,
                        leased_until=time.time() + self._visibility,
                        attempts=1,
                        error=None,
                        done=False,
                    )
                )
        except sa_exc.IntegrityError:
            return None
        return StreamMessage(f"{record.partition}:{record.offset}", delivery, body, 1)

    def _row(self, message_id: str) -> tuple[Any, ...]:
        partition, offset = (int(part) for part in message_id.split(":"))
        return (_c.topic == self.topic, _c.partition == partition, _c.offset == offset)

    def _finish(self, message: StreamMessage) -> None:
        """Mark the record done and commit its partition's offset up to the first record not done."""
        from kafka import OffsetAndMetadata, TopicPartition

        partition = int(message.message_id.split(":")[0])
        where = (_c.topic == self.topic, _c.partition == partition)
        with self._engine.begin() as connection:
            connection.execute(_claims.update().where(*self._row(message.message_id)).values(done=True))
            first_open = connection.execute(
                sa.select(sa.func.min(_c.offset)).where(*where, _c.done.is_(False))
            )
            last_done = connection.execute(sa.select(sa.func.max(_c.offset)).where(*where, _c.done.is_(True)))
            first, last = first_open.scalar(), last_done.scalar()
        if first is None and last is None:
            return
        upto = int(first) if first is not None else int(last or 0) + 1
        probe = self._probe_client()
        tp = TopicPartition(self.topic, partition)
        if upto > (probe.committed(tp) or 0):
            probe.commit({tp: OffsetAndMetadata(upto, "", -1)})
        with self._engine.begin() as connection:  # done rows stay a while: a lagging reader skips them
            connection.execute(
                _claims.delete().where(
                    *where,
                    _c.done.is_(True),
                    _c.offset < upto,
                    _c.leased_until < time.time() - self._dedupe_seconds,
                )
            )

    def ack(self, message: StreamMessage) -> None:
        with self._guard("ack"):
            self._finish(message)

    def note_failure(self, message: StreamMessage, error: str) -> None:
        with self._guard("note failure"), self._engine.begin() as connection:
            connection.execute(
                _claims.update().where(*self._row(message.message_id)).values(error=error[:2000])
            )

    def dead_letter(self, message: StreamMessage, reason: str) -> None:
        with self._guard("dead-letter"):
            with self._engine.begin() as connection:
                last = connection.execute(sa.select(_c.error).where(*self._row(message.message_id))).scalar()
            full = reason if last is None else f"{reason}; last error: {last}"
            letter = {
                "delivery": message.delivery_id,
                "job": message.body,
                "attempts": message.attempts,
                "reason": full[:4000],
                "message_id": message.message_id,
            }
            self._producer_client().send(
                self.dead, key=message.delivery_id.encode(), value=json.dumps(letter).encode()
            ).get(timeout=30)
            self._finish(message)

    # -- reading back -------------------------------------------------------------------------------------

    def dead_letter_reasons(self, limit: int = 100) -> list[tuple[str, str]]:
        letters: list[tuple[int, dict[str, Any]]] = []
        with self._guard("read dead letters"):
            reader = self._consumer()
            try:
                partitions = self._partitions_of(reader, self.dead)
                ends = reader.end_offsets(partitions)
                starts = reader.beginning_offsets(partitions)
                reader.assign(partitions)
                for tp in partitions:
                    reader.seek(tp, max(starts[tp], ends[tp] - limit))
                    while reader.position(tp) < ends[tp]:
                        for records in reader.poll(timeout_ms=1000).values():
                            letters += [(r.offset, json.loads(r.value)) for r in records]
            finally:
                reader.close()
        letters.sort(key=lambda item: item[0], reverse=True)  # one partition: newest first
        return [(str(v.get("delivery", "")), str(v.get("reason", ""))) for _, v in letters[:limit]]

    def stats(self) -> StreamStats:
        with self._guard("stats"):
            probe = self._probe_client()
            partitions = self._partitions_of(probe, self.topic)
            ends = probe.end_offsets(partitions)
            starts = probe.beginning_offsets(partitions)
            committed = {tp: max(starts[tp], probe.committed(tp) or 0) for tp in partitions}
            dead_parts = self._partitions_of(probe, self.dead)
            dead_ends = probe.end_offsets(dead_parts)
            dead_starts = probe.beginning_offsets(dead_parts)
            with self._engine.begin() as connection:
                pending = connection.execute(
                    sa.select(sa.func.count()).where(_c.topic == self.topic, _c.done.is_(False))
                ).scalar()
                done_ahead = sum(  # acknowledged out of order, past the committed offset
                    connection.execute(
                        sa.select(sa.func.count()).where(
                            _c.topic == self.topic,
                            _c.partition == tp.partition,
                            _c.done.is_(True),
                            _c.offset >= committed[tp],
                        )
                    ).scalar()
                    or 0
                    for tp in partitions
                )
        length = sum(ends[tp] - committed[tp] for tp in partitions) - done_ahead
        dead = sum(dead_ends[tp] - dead_starts[tp] for tp in dead_parts)
        return StreamStats(
            backend="kafka", length=int(length), pending=int(pending or 0), dead_letters=int(dead)
        )

    def close(self) -> None:
        with self._lock:
            for client in (self._reader, self._probe):
                if client is not None:
                    client.close()
            if self._producer is not None:
                self._producer.close(timeout=10)
            self._reader = self._probe = self._producer = None
            self._engine.dispose()

    async def aclose(self) -> None:
        return None


def _safe(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "?"
