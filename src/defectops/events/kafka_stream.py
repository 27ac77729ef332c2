"""Kafka behind :class:`~defectops.events.stream.EventStream`: the topic is the log, SQL holds the claims.

Why not Kafka's consumer-group rebalancing for the "pending" state: a group hands whole partitions to members
and moves them only when a member's session expires, and it keeps no per-record lease or delivery count, which
the visibility timeout and the dead letters after ``max_attempts`` need (as Redis's pending entries give).
So the adapter uses Kafka for what every Kafka-protocol broker does well, and a small SQL ledger for the rest
(docs/events.md, "Kafka", has the trials on Tansu's rebalancing):

* **The log.** Events go to topic ``T`` (the ``stream`` setting with characters Kafka refuses replaced by
  ``.``), keyed by the publisher's key (the repository: its events stay in one partition, in order), with
  the delivery id in a record header, ``acks=all`` and the idempotent producer. :meth:`publish` returns
  after the broker acknowledged the record. Dead letters go to ``T.dead`` with the reason in the value.
* **Delivery ids** (a table of :mod:`~defectops.events.kafka_ledger`). :meth:`publish` looks the id up,
  produces, and stores the id after the broker acknowledged the record: a replay finds the id and stores
  nothing. Kafka has no "set if absent", so two edges remain, both harmless because the workers' effects
  are idempotent: a receiver killed between the acknowledgement and storing the id leaves the record without
  its id (a redelivery of that webhook stores it again), and two copies of one delivery arriving at the same
  moment can both be produced (one answers ``duplicate``). No lock is held across the broker's round trip.
* **Claims** (``claims`` table, one row per record handed out). Every worker reads every partition from the
  group's committed offset (manual assignment, no group membership) and claims a record by inserting its row;
  the row's lease runs for the visibility timeout. A record whose lease ran out unacknowledged (its worker
  died) is claimed again by the next worker that asks, and ``attempts`` counts the deliveries. :meth:`ack`
  marks the row done and commits the group's offset up to the first record not done in that partition.

Receivers and workers must reach the same SQL database: the workspace's SQLite file on one machine, a
PostgreSQL URL (``kafka_state_url``) across machines.

A broker that does not answer (kafka-python's retriable errors: connection refused or lost, request timed out,
no leader or coordinator yet) and a ledger database that does not (SQLAlchemy's OperationalError) are an
:class:`~defectops.errors.EventStreamUnavailableError`, which a worker waits out (as with Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc

from defectops.errors import ConfigError, EventStreamError, EventStreamUnavailableError
from defectops.events.kafka_ledger import ClaimLedger, default_state_url, safe_url
from defectops.events.stream import StreamMessage, StreamStats

if TYPE_CHECKING:
    from pathlib import Path

    from defectops.config import EventsSettings

_DELIVERY_HEADER = "delivery"


def topic_name(stream: str) -> str:
    """The Kafka topic of a stream setting (Kafka allows letters, digits, ``.``, ``_`` and ``-``)."""
    return re.sub(r"[^A-Za-z0-9._-]", ".", stream)[:200]


class KafkaEventStream:
    """At-least-once delivery through a Kafka topic, with claims and delivery ids in SQL (thread-safe)."""

    def __init__(self, settings: EventsSettings, state_url: str) -> None:
        self.topic = topic_name(settings.stream)
        self.dead = f"{self.topic}.dead"
        self.group = settings.group
        self._servers = [s.strip() for s in settings.kafka_servers.split(",") if s.strip()]
        self._partitions = settings.kafka_partitions
        self._where = f"kafka://{','.join(self._servers)}/{self.topic}"
        self._ledger_where = f"the Kafka ledger at {safe_url(state_url)}"
        self.ledger = ClaimLedger(
            state_url,
            topic=self.topic,
            visibility=float(settings.visibility_timeout),
            dedupe_seconds=max(1.0, settings.dedupe_hours * 3600),
        )
        self._lock = threading.RLock()
        self._producer: Any = None
        self._reader: Any = None  # this process's consumer of every partition (manual assignment)
        self._probe: Any = None  # offsets and the dead letters, never assigned for reading

    @classmethod
    def connect(
        cls, settings: EventsSettings, *, workspace: Path | None = None, prepare: bool = True
    ) -> KafkaEventStream:
        url = settings.kafka_state_url
        if url is None:
            if workspace is None:
                raise ConfigError("the Kafka stream needs DEFECTOPS_EVENTS_KAFKA_STATE_URL or a workspace")
            url = default_state_url(workspace)
        kafka_log = logging.getLogger("kafka")
        if kafka_log.level == logging.NOTSET:  # kafka-python logs every connection at INFO
            kafka_log.setLevel(logging.WARNING)
        try:
            stream = cls(settings, url)
            if prepare:
                stream.prepare()
        except ImportError:
            raise ConfigError(
                "the Kafka stream needs the kafka extra: pip install 'defectops[kafka]'"
            ) from None
        except (sa_exc.SQLAlchemyError, OSError, ValueError) as exc:
            raise EventStreamError(f"event stream {safe_url(url)}: {type(exc).__name__}: {exc}") from None
        return stream

    # -- clients ------------------------------------------------------------------------------------------

    def _fail(self, what: str, exc: Exception) -> EventStreamError:
        detail = " ".join(str(exc).split())  # SQLAlchemy's end in "\n(Background on this error at: ...)"
        cause = f"{what} failed: {type(exc).__name__}: {detail}"
        message = f"event stream {self._where}: {cause}"
        if isinstance(exc, sa_exc.OperationalError):
            return EventStreamUnavailableError(message, server=self._ledger_where, cause=cause)
        if getattr(exc, "retriable", False):  # kafka-python's mark of an error worth retrying
            return EventStreamUnavailableError(
                message, server=f"Kafka at {','.join(self._servers)}", cause=cause
            )
        return EventStreamError(message)

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

    def prepare(self) -> None:
        with self._guard(f"create the tables of {self._ledger_where}"):  # the error names the database
            self.ledger.create_tables()
        self.ensure_topics()

    def ensure_topics(self) -> None:
        """Create the topic and its dead-letter topic unless they exist, with the broker's default
        replication factor (-1; Kafka 2.4+): on a cluster, ``default.replication.factor`` and
        ``min.insync.replicas`` decide what ``acks=all`` waits for."""
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import KafkaError, TopicAlreadyExistsError

        try:
            # an unreachable broker: one line after 5 s, not kafka-python's default 30 s
            admin = KafkaAdminClient(**self._common(), bootstrap_timeout_ms=5000)
        except KafkaError as exc:
            raise self._fail("connect", exc) from None
        try:
            existing = set(admin.list_topics())
            wanted = [
                NewTopic(name, self._partitions if name == self.topic else 1, -1)
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
        # Not under the stream's lock: concurrent webhooks produce concurrently (the producer is thread-safe).
        from kafka.errors import KafkaError

        try:
            if self.ledger.seen(delivery_id):
                return False
            with self._lock:
                producer = self._producer_client()
            producer.send(
                self.topic,
                key=(key or delivery_id).encode(),
                value=body.encode(),
                headers=[(_DELIVERY_HEADER, delivery_id.encode())],
            ).get(timeout=30)  # acks=all: the broker stored it
            return self.ledger.remember(delivery_id)
        except (KafkaError, sa_exc.SQLAlchemyError) as exc:
            raise self._fail("publish", exc) from None

    async def publish_async(self, delivery_id: str, body: str, *, key: str | None = None) -> bool:
        # kafka-python and the SQL driver block: one thread hop per webhook
        return await asyncio.to_thread(self.publish, delivery_id, body, key=key)

    # -- consuming ----------------------------------------------------------------------------------------

    def receive(self, consumer: str, *, count: int, block_ms: int) -> list[StreamMessage]:
        with self._guard("receive"):
            messages = self.ledger.reclaim(consumer, count)
            if messages:
                return messages
            reader = self._reader_client()
            deadline = time.monotonic() + block_ms / 1000
            while True:
                left = max(0, int((deadline - time.monotonic()) * 1000))
                for records in reader.poll(timeout_ms=left, max_records=count).values():
                    for record in records:
                        claimed = self._claim(consumer, record)
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

    def _claim(self, consumer: str, record: Any) -> StreamMessage | None:
        headers = dict(record.headers or ())
        raw = headers.get(_DELIVERY_HEADER, record.key)  # records without the header: the key is the id
        delivery = raw.decode() if raw is not None else ""
        body = record.value.decode() if record.value is not None else ""
        return self.ledger.claim(consumer, f"{record.partition}:{record.offset}", delivery, body)

    def _finish(self, message: StreamMessage) -> None:
        """Mark the record done and commit its partition's offset up to the first record not done."""
        from kafka import OffsetAndMetadata, TopicPartition

        upto = self.ledger.finish(message.message_id)
        if upto is None:
            return
        tp = TopicPartition(self.topic, int(message.message_id.split(":")[0]))
        probe = self._probe_client()
        if upto > (probe.committed(tp) or 0):
            probe.commit({tp: OffsetAndMetadata(upto, "", -1)})
        self.ledger.forget_done(tp.partition, upto)

    def ack(self, message: StreamMessage) -> None:
        with self._guard("ack"):
            self._finish(message)

    def note_failure(self, message: StreamMessage, error: str) -> None:
        with self._guard("note failure"):
            self.ledger.note_error(message.message_id, error)

    def dead_letter(self, message: StreamMessage, reason: str) -> None:
        with self._guard("dead-letter"):
            last = self.ledger.last_error(message.message_id)
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
            # acknowledged out of order: done, yet past the committed offset
            pending, done_ahead = self.ledger.counts({tp.partition: committed[tp] for tp in partitions})
        length = sum(ends[tp] - committed[tp] for tp in partitions) - done_ahead
        dead = sum(dead_ends[tp] - dead_starts[tp] for tp in dead_parts)
        return StreamStats(backend="kafka", length=int(length), pending=pending, dead_letters=int(dead))

    def close(self) -> None:
        with self._lock:
            for client in (self._reader, self._probe):
                if client is not None:
                    client.close()
            if self._producer is not None:
                self._producer.close(timeout=10)
            self._reader = self._probe = self._producer = None
            self.ledger.dispose()

    async def aclose(self) -> None:
        return None
