"""The EventStream contract, the same tests against both backends: a real redis-server and a real Tansu broker
(Kafka's wire protocol; one broker per module, one topic per test), the Kafka adapter's ledger on SQLite and on
a real PostgreSQL (DEFECTOPS_TEST_POSTGRES_URL; skipped locally without it, a failure in CI).

A "worker that dies" is a stream that received an event and is dropped without acknowledging it; "another
worker" is a second stream opened on the same settings (new connections, new Kafka consumer): what a worker
process restarted after SIGKILL sees. test_events_kill.py does the same with real processes and SIGKILL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from defectops.config import EventsSettings
from defectops.events import EventStream, StreamMessage, open_stream

pytestmark = pytest.mark.parametrize(
    "stream_backend",
    [
        "redis",
        "kafka",
        pytest.param("kafka-postgres", marks=pytest.mark.postgres),
    ],  # the ledger on PostgreSQL
    indirect=True,
)

Opener = Callable[..., EventStream]


@pytest.fixture
def open_(stream_env: dict[str, str], tmp_path: Path) -> Iterator[Opener]:
    """Opens streams on the test's backend and stream (every call: a new client, as another process has)."""
    given = {key.removeprefix("DEFECTOPS_EVENTS_").lower(): value for key, value in stream_env.items()}
    given.setdefault("stream", f"contract-{tmp_path.name}")
    opened: list[EventStream] = []

    def opener(**overrides: object) -> EventStream:
        settings = EventsSettings.model_validate({**given, "block_ms": 100, **overrides})
        stream = open_stream(settings, workspace=tmp_path / "ws")
        opened.append(stream)
        return stream

    yield opener
    for stream in opened:
        stream.close()


def _receive_within(
    stream: EventStream, consumer: str, *, count: int = 10, seconds: float = 30
) -> list[StreamMessage]:
    """Receive until something comes (a lease to run out, a broker to answer); [] after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = stream.receive(consumer, count=count, block_ms=100)
        if found:
            return found
    return []


def test_a_published_event_is_stored_before_publish_returns(open_: Opener) -> None:
    publisher = open_()
    assert publisher.publish("d-1", '{"n": 1}', key="acme/widgets") is True
    publisher.close()  # the receiver is gone: only the stream holds the event now
    worker = open_()
    assert worker.stats().length == 1
    [message] = _receive_within(worker, "w1")
    assert (message.delivery_id, message.body, message.attempts) == ("d-1", '{"n": 1}', 1)


def test_a_delivery_id_is_stored_once(open_: Opener) -> None:
    stream = open_()
    assert stream.publish("d-1", "first", key="acme/widgets") is True
    assert stream.publish("d-1", "second", key="acme/widgets") is False
    assert open_().publish("d-1", "third") is False  # another receiver process: still a duplicate
    assert stream.stats().length == 1
    [message] = _receive_within(stream, "w1")
    assert message.body == "first"
    stream.ack(message)
    assert stream.receive("w1", count=10, block_ms=200) == []


def test_publish_async_is_idempotent_too(open_: Opener) -> None:
    stream = open_()

    async def twice() -> list[bool]:
        try:
            return [await stream.publish_async("d-1", "a", key="acme/widgets") for _ in range(2)]
        finally:
            await stream.aclose()

    assert asyncio.run(twice()) == [True, False]
    assert stream.stats().length == 1


def test_an_event_is_leased_to_one_worker_and_redelivered_after_it_dies(open_: Opener) -> None:
    open_().publish("d-1", "job", key="acme/widgets")
    # a lease of 3 s: B asks right after A took the event, and gets nothing while A holds it
    dying = open_(visibility_timeout=3)
    [first] = _receive_within(dying, "A")
    other = open_(visibility_timeout=3)
    assert other.receive("B", count=10, block_ms=100) == []
    assert other.stats().pending == 1
    dying.close()  # killed: never acknowledges
    [again] = _receive_within(other, "B")  # after the visibility timeout
    assert (again.delivery_id, again.body, again.attempts) == ("d-1", "job", 2)
    assert again.message_id == first.message_id
    other.ack(again)
    stats = other.stats()
    assert (stats.length, stats.pending, stats.dead_letters) == (0, 0, 0)
    assert open_().receive("C", count=10, block_ms=300) == []


def test_an_acknowledged_event_is_never_delivered_again_after_a_restart(open_: Opener) -> None:
    publisher = open_()
    for n in range(3):
        publisher.publish(f"d-{n}", f"job {n}", key="acme/widgets")
    worker = open_()
    done = [_receive_within(worker, "w1", count=1)[0] for _ in range(2)]
    for message in done:
        worker.ack(message)
    worker.close()  # restarted
    restarted = open_()
    [left] = _receive_within(restarted, "w1")
    assert left.delivery_id == "d-2"
    restarted.ack(left)
    assert restarted.receive("w1", count=10, block_ms=300) == []
    assert restarted.stats().length == 0


def test_events_of_one_key_come_in_the_order_they_were_published(open_: Opener) -> None:
    publisher = open_()
    for n in range(12):
        publisher.publish(f"d-{n}", f"job {n}", key=("acme/widgets", "acme/gadgets")[n % 2])
    worker = open_()
    received: list[StreamMessage] = []
    while len(received) < 12:
        batch = _receive_within(worker, "w1")
        assert batch, [m.delivery_id for m in received]
        received += batch
    for key in (0, 1):
        order = [int(m.delivery_id[2:]) for m in received if int(m.delivery_id[2:]) % 2 == key]
        assert order == list(range(key, 12, 2))


def test_a_failed_event_goes_to_the_dead_letters_with_its_last_error(open_: Opener) -> None:
    stream = open_()
    stream.publish("poison-1", "bad job", key="acme/widgets")
    stream.publish("fine-1", "good job", key="acme/widgets")
    [poison] = _receive_within(stream, "w1", count=1)
    assert poison.delivery_id == "poison-1"
    stream.note_failure(poison, "ValueError: no such commit")
    stream.dead_letter(poison, "failed 1 times")
    assert stream.dead_letter_reasons() == [
        ("poison-1", "failed 1 times; last error: ValueError: no such commit")
    ]
    stats = stream.stats()
    assert (stats.length, stats.dead_letters) == (1, 1)
    [fine] = _receive_within(stream, "w1")
    assert fine.delivery_id == "fine-1"  # the dead letter is not delivered again
    stream.ack(fine)
    assert open_().stats().as_dict()["dead_letters"] == 1
