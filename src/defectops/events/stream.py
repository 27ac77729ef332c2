"""The durable stream between the receiver and the workers: one small interface, two backends.

Why an interface: Redis Streams (the embedded default, one ``redis-server``) and Kafka (where a platform runs
one already) give the same at-least-once contract, and the receiver and workers need nothing else:

* :meth:`EventStream.publish` returns only after the event is stored (acknowledge the webhook after it, never
  before); it is idempotent by delivery id: a replayed delivery is refused as a duplicate, not stored twice.
* :meth:`EventStream.receive` hands a worker events, each until it is acknowledged. An event whose worker
  died (no ack within the visibility timeout) is handed to another worker; ``attempts`` counts deliveries.
* :meth:`EventStream.ack` ends an event; :meth:`EventStream.dead_letter` moves it to the dead letters with the
  reason, where it stays for a person to look at (and is counted in ``/metrics``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from defectops.config import EventsSettings


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One delivery of an event to a worker."""

    message_id: str
    delivery_id: str
    body: str  # the ScoreJob as JSON
    attempts: int  # deliveries so far, this one included


@dataclass(frozen=True, slots=True)
class StreamStats:
    """What ``/metrics`` shows about the stream."""

    backend: str
    length: int  # events stored and not yet acknowledged or dead-lettered
    pending: int  # events handed to a worker and not yet acknowledged
    dead_letters: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "length": self.length,
            "pending": self.pending,
            "dead_letters": self.dead_letters,
        }


class EventStream(Protocol):
    """At-least-once delivery of score jobs, idempotent by delivery id."""

    def publish(self, delivery_id: str, body: str, *, key: str | None = None) -> bool:
        """Store one event durably; False (nothing stored) when ``delivery_id`` was seen before.

        ``key`` (the repository) orders events: those of one key are delivered in the order published
        (Redis keeps one order for the whole stream; Kafka one per partition, chosen by the key).
        """
        ...

    async def publish_async(self, delivery_id: str, body: str, *, key: str | None = None) -> bool:
        """:meth:`publish` for the receiver's event loop (no thread hop per webhook)."""
        ...

    def receive(self, consumer: str, *, count: int, block_ms: int) -> list[StreamMessage]:
        """Up to ``count`` events for ``consumer``: first those abandoned by dead workers, then new ones."""
        ...

    def ack(self, message: StreamMessage) -> None:
        """The event is done: it is never delivered again."""
        ...

    def dead_letter(self, message: StreamMessage, reason: str) -> None:
        """Give up on the event: it moves to the dead letters with ``reason``."""
        ...

    def note_failure(self, message: StreamMessage, error: str) -> None:
        """Remember why an attempt failed (the event stays pending and is retried after the timeout)."""
        ...

    def dead_letter_reasons(self, limit: int = 100) -> list[tuple[str, str]]:
        """(delivery id, reason) of the newest dead letters."""
        ...

    def prepare(self) -> None:
        """Create what delivery needs (Redis: the consumer group; Kafka: the ledger's tables and the topics);
        idempotent. EventStreamUnavailableError while the server does not answer (a worker waits that out)."""
        ...

    def stats(self) -> StreamStats: ...

    def close(self) -> None: ...

    async def aclose(self) -> None:
        """Close what :meth:`publish_async` opened (in the loop that used it)."""
        ...


def open_stream(
    settings: EventsSettings, *, workspace: Path | None = None, prepare: bool = True
) -> EventStream:
    """The stream the settings name, connected and prepared; EventStreamError when it is unreachable.

    ``workspace`` holds the Kafka adapter's default SQL state (``kafka_state_url`` unset). ``prepare=False``
    leaves the server untouched (a worker calls :meth:`EventStream.prepare` itself, waiting out a stream that
    is not up yet); a malformed URL is still an error here.
    """
    if settings.backend == "kafka":
        from defectops.events.kafka_stream import KafkaEventStream

        return KafkaEventStream.connect(settings, workspace=workspace, prepare=prepare)
    from defectops.events.redis_stream import RedisEventStream

    return RedisEventStream.connect(settings, prepare=prepare)
