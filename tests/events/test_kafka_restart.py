"""The Kafka stream across a broker killed with SIGKILL and restarted.

Tansu's in-memory storage (what the other Kafka tests use) dies with the broker, so this test gives Tansu its
S3 storage engine on the moto S3 server of tests/s3_server.py: records and committed offsets then live in the
bucket, as they would on a real cluster's disks. What it proves: an acknowledged webhook's event survives the
broker's crash, an acknowledged event is not delivered again, an event a worker held when the broker died is
redelivered after its lease, and delivery ids are still remembered; and a running worker waits out the broker
being down, then carries on (it exited on its first failed call, as with Redis: test_events_outage.py).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from defectops.config import EventsSettings, Settings
from defectops.events import (
    EventStream,
    GitHubClient,
    StreamMessage,
    Worker,
    open_stream,
    prediction_id,
)
from event_world import REPO, TOKEN, WorkerThread, World, environment, push_payload, wait_for
from github_api import GitHubServer
from gitrepo import RepoBuilder, lines
from kafka_server import KafkaServer, KafkaUnavailableError
from s3_server import BUCKET, CREDENTIALS, s3_endpoint  # noqa: F401 - the fixture

pytestmark = pytest.mark.s3


@pytest.fixture
def broker(s3_endpoint: str, tmp_path: Path) -> Iterator[KafkaServer]:  # noqa: F811
    environment = {
        "AWS_ACCESS_KEY_ID": CREDENTIALS["key"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
    }
    try:
        server = KafkaServer(tmp_path / "tansu", storage=f"s3://{BUCKET}/", environment=environment)
    except KafkaUnavailableError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs the Tansu broker: {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


def _worker_settings(
    broker: KafkaServer,
    tmp_path: Path,
    github: GitHubServer,
    upstream: RepoBuilder,
    models: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """The settings of a worker and receiver on ``broker``, with a topic of their own."""
    kafka = {
        "DEFECTOPS_EVENTS_BACKEND": "kafka",
        "DEFECTOPS_EVENTS_KAFKA_SERVERS": broker.servers,
        "DEFECTOPS_EVENTS_KAFKA_PARTITIONS": "2",
        "DEFECTOPS_EVENTS_STREAM": f"outage-{uuid.uuid4().hex[:8]}",  # the bucket outlives one test
        "DEFECTOPS_EVENTS_KAFKA_STATE_URL": f"sqlite:///{(tmp_path / 'kafka-state.db').as_posix()}",
    }
    for name in ("GITHUB_TOKEN", "MLFLOW_TRACKING_URI", "DEFECTOPS_MODE", "DEFECTOPS_INFORMATION_URI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment(tmp_path, "", github, upstream, models, **kafka).items():
        monkeypatch.setenv(name, value)
    return Settings()


def _next(stream: EventStream, consumer: str) -> StreamMessage:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = stream.receive(consumer, count=1, block_ms=200)
        if found:
            return found[0]
    raise AssertionError("nothing delivered within 60 s")


def test_events_and_offsets_survive_a_broker_killed_and_restarted(
    broker: KafkaServer, tmp_path: Path
) -> None:
    settings = EventsSettings(
        backend="kafka",
        kafka_servers=broker.servers,
        kafka_partitions=2,
        stream=f"restart-{uuid.uuid4().hex[:8]}",  # the bucket outlives one test
        visibility_timeout=2,
    )
    stream = open_stream(settings, workspace=tmp_path / "ws")
    for n in range(3):
        assert stream.publish(f"d-{n}", f"job {n}", key="acme/widgets")
    stream.ack(_next(stream, "w1"))
    held = _next(stream, "w1")  # taken, never acknowledged: the worker dies with the broker
    assert held.delivery_id == "d-1"
    stream.close()

    broker.restart()

    stream = open_stream(settings, workspace=tmp_path / "ws")
    try:
        # no assertion on stats().length here: right after a SIGKILL, Tansu's S3 engine can report a stale
        # high watermark (ListOffsets said 1 where 3 records were stored and then fetched; docs/events.md)
        assert stream.publish("d-0", "job 0", key="acme/widgets") is False  # still a duplicate
        delivered = {}
        while len(delivered) < 2:
            message = _next(stream, "w2")
            delivered[message.delivery_id] = message
            stream.ack(message)
        assert sorted(delivered) == ["d-1", "d-2"]
        assert delivered["d-1"].attempts == 2  # redelivered after its lease
        assert delivered["d-2"].attempts == 1
        assert stream.publish("d-3", "job 3", key="acme/widgets") is True
        after = _next(stream, "w2")
        assert (after.delivery_id, after.body) == ("d-3", "job 3")
        stream.ack(after)
        stats = stream.stats()
        assert (stats.length, stats.pending, stats.dead_letters) == (0, 0, 0)
    finally:
        stream.close()


@pytest.mark.slow  # the broker's client gives up on a call after its 30 s request timeout, then the restart
def test_a_worker_waits_out_the_broker_being_down_and_scores_every_event_once(
    broker: KafkaServer,
    tmp_path: Path,
    github: GitHubServer,
    upstream: RepoBuilder,
    models: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="defectops.events")
    settings = _worker_settings(broker, tmp_path, github, upstream, models, monkeypatch)
    world = World(settings, github)
    first, *before = upstream.shas
    assert world.send(push_payload(upstream, before, before=first), delivery="before") == 202
    worker = Worker(settings, world.stream, world.api, consumer="w1", predictions=world.log)
    running = WorkerThread(worker)
    try:
        wait_for(lambda: worker.stats.processed == 1, "the first event is processed")
        broker.kill()
        wait_for(
            lambda: "unreachable" in caplog.text or not running.thread.is_alive(),
            "the worker notices that the broker is gone",
        )
        assert running.thread.is_alive(), running.error
        broker.start()
        after = upstream.commit("Change after the outage", {"src/after.py": lines(12, "a")}, days=1)
        assert world.send(push_payload(upstream, [after], before=before[-1]), delivery="after") == 202
        wait_for(lambda: worker.stats.processed == 2, "the event published after the outage is processed")
        running.stop()
        assert running.error is None
        assert (worker.stats.failed, worker.stats.dead_lettered) == (0, 0)
        for sha in [*before, after]:
            rows = world.log.by_commit(REPO, sha)
            assert sorted(r.prediction_id for r in rows) == sorted(
                prediction_id(REPO, sha, name, "local", served)
                for name, served in (("champion", True), ("challenger", False))
            )
            assert len(github.api.runs_for(sha)) == 1
    finally:
        running.stop()
        world.close()
    outage = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert outage[0].startswith(f"Kafka at {broker.servers} unreachable: receive failed: "), outage
    assert outage[0].endswith("; retrying in 1s")


def test_a_worker_started_before_the_broker_waits_for_it_then_scores_every_event_once(
    broker: KafkaServer,
    tmp_path: Path,
    github: GitHubServer,
    upstream: RepoBuilder,
    models: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same start-up wait as with Redis (test_events_outage.py), through the same code: the worker
    prepares the stream (ledger tables, topics) as its first stream call, waited out while the broker is down."""
    caplog.set_level(logging.INFO, logger="defectops.events")
    settings = _worker_settings(broker, tmp_path, github, upstream, models, monkeypatch)
    broker.kill()
    api = GitHubClient(github.url, TOKEN, sleep=lambda _s: None)
    stream = open_stream(settings.events, workspace=tmp_path / "ws", prepare=False)
    worker = Worker(settings, stream, api, consumer="w1")
    running = WorkerThread(worker)
    world: World | None = None
    try:
        wait_for(
            lambda: "unreachable" in caplog.text or not running.thread.is_alive(),
            "the worker finds the broker unreachable",
        )
        assert running.thread.is_alive(), running.error
        broker.start()
        wait_for(
            lambda: "reachable again" in caplog.text or not running.thread.is_alive(),
            "the worker notices that the broker is up",
        )
        assert running.thread.is_alive(), running.error
        world = World(settings, github)
        first, *later = upstream.shas
        assert world.send(push_payload(upstream, later, before=first), delivery="one") == 202
        wait_for(lambda: worker.stats.processed == 1, "the event is processed")
        running.stop()
        assert running.error is None
        assert (worker.stats.failed, worker.stats.dead_lettered) == (0, 0)
        for sha in later:
            rows = world.log.by_commit(REPO, sha)
            assert sorted(r.prediction_id for r in rows) == sorted(
                prediction_id(REPO, sha, name, "local", served)
                for name, served in (("champion", True), ("challenger", False))
            )
            assert len(github.api.runs_for(sha)) == 1
    finally:
        running.stop()
        for closing in (api, stream, worker.predictions, world):
            if closing is not None:
                closing.close()
    waits = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert waits[0].startswith(f"Kafka at {broker.servers} unreachable: connect failed: "), waits
    assert waits[0].endswith("; retrying in 1s")
