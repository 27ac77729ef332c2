"""A worker waits out its stream going away (Redis killed and restarted on the same port), then carries on in
the same consumer group: every event published before, during and after is scored, logged and reported
exactly once. Was: the first failed stream call ended ``defectops events work`` (exit 11), and the receiver's
first webhook after the restart was a 503 (its pooled connection had died with Redis).

Real processes on loopback: redis-server (append-only file, ``appendfsync always``), the GitHub API server,
git repositories; the worker runs in a thread of the test (the give-up test runs the real command).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from defectops.config import Settings
from defectops.errors import EventStreamUnavailableError
from defectops.events import GitHubClient, Worker, create_receiver, open_stream, prediction_id
from defectops.predlog import PredictionLog
from event_world import REDIS_PASSWORD, REPO, TOKEN, WorkerThread, World, push_payload, signed, wait_for
from github_api import GitHubServer
from gitrepo import RepoBuilder, lines
from redis_server import RedisServer


def _rows_are_once(log: PredictionLog, sha: str) -> bool:
    rows = log.by_commit(REPO, sha)
    return {r.prediction_id for r in rows} == {
        prediction_id(REPO, sha, "champion", "local", True),
        prediction_id(REPO, sha, "challenger", "local", False),
    } and len(rows) == 2


def test_a_worker_waits_out_a_redis_restart_and_scores_every_event_once(
    settings: Settings,
    github: GitHubServer,
    upstream: RepoBuilder,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="defectops.events")
    world = World(settings, github)

    def send(shas: list[str], before: str, delivery: str) -> int:
        return world.send(push_payload(upstream, shas, before=before), delivery=delivery)

    first, *before = upstream.shas
    assert send(before, first, "before") == 202
    worker = Worker(settings, world.stream, world.api, consumer="w1", predictions=world.log)
    running = WorkerThread(worker)
    try:
        wait_for(lambda: worker.stats.processed == 1, "the first event is processed")
        # The next event is in hand when Redis dies: scored, logged and reported, then its ack fails.
        github.api.hold_creations = True
        github.api.created.clear()  # set by the first event's check runs
        tip = upstream.head()
        during = upstream.commit("Change during the outage", {"src/during.py": lines(40, "d")}, days=1)
        assert send([during], tip, "during") == 202
        assert github.api.created.wait(timeout=240)
        redis_server.kill()
        github.api.hold_creations = False
        github.api.release.set()
        wait_for(
            lambda: "unreachable" in caplog.text or not running.thread.is_alive(),
            "the worker notices that Redis is gone",
        )
        assert running.thread.is_alive(), running.error
        redis_server.start()
        after = upstream.commit("Change after the outage", {"src/after.py": lines(12, "a")}, days=1)
        # the receiver's pooled connection died with Redis: retried on a new one, not a 503
        assert send([after], during, "after") == 202
        wait_for(lambda: worker.stats.processed == 3, "the events of the outage and after are processed")
        running.stop()
        assert running.error is None
        assert (worker.stats.failed, worker.stats.dead_lettered) == (0, 0)
        for sha in [*before, during, after]:
            assert _rows_are_once(world.log, sha), [
                (r.model_name, r.served) for r in world.log.by_commit(REPO, sha)
            ]
            assert len(github.api.runs_for(sha)) == 1
        stats = world.stream.stats()
        assert (stats.length, stats.pending, stats.dead_letters) == (0, 0, 0)
    finally:
        running.stop()
        world.close()
    messages = [r.getMessage() for r in caplog.records]
    outage = [m for m in messages if "unreachable" in m]
    # One line per attempt, naming the server without its password, then one when it is back.
    assert outage[0].startswith(f"Redis at 127.0.0.1:{redis_server.port} unreachable: ack failed: ")
    assert outage[0].endswith("; retrying in 1s")
    assert all("\n" not in m for m in outage)
    assert any(
        m.startswith(f"Redis at 127.0.0.1:{redis_server.port} reachable again after ") for m in messages
    )
    assert not any(REDIS_PASSWORD in m for m in messages)


def test_a_worker_started_before_redis_waits_for_it_then_scores_every_event_once(
    settings: Settings,
    github: GitHubServer,
    upstream: RepoBuilder,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pod scheduled before Redis is ready: the worker waits (it exited 11 at once and crash-looped), then
    creates its consumer group and scores what the receiver stores from then on."""
    caplog.set_level(logging.INFO, logger="defectops.events")
    redis_server.kill()  # its port is closed: nothing has run against this Redis yet
    api = GitHubClient(github.url, TOKEN, sleep=lambda _s: None)
    stream = open_stream(settings.events, prepare=False)
    worker = Worker(settings, stream, api, consumer="w1")
    running = WorkerThread(worker)
    world: World | None = None
    try:
        wait_for(
            lambda: "unreachable" in caplog.text or not running.thread.is_alive(),
            "the worker finds Redis unreachable",
        )
        assert running.thread.is_alive(), running.error
        redis_server.start()
        wait_for(
            lambda: "reachable again" in caplog.text or not running.thread.is_alive(),
            "the worker notices that Redis is up",
        )
        assert running.thread.is_alive(), running.error
        world = World(settings, github)
        first, *before = upstream.shas
        assert world.send(push_payload(upstream, before, before=first), delivery="one") == 202
        tip = upstream.head()
        later = upstream.commit("Change after start-up", {"src/later.py": lines(12, "l")}, days=1)
        assert world.send(push_payload(upstream, [later], before=tip), delivery="two") == 202
        wait_for(lambda: worker.stats.processed == 2, "both events are processed")
        running.stop()
        assert running.error is None
        assert (worker.stats.failed, worker.stats.dead_lettered) == (0, 0)
        for sha in [*before, later]:
            assert _rows_are_once(world.log, sha), [
                (r.model_name, r.served) for r in world.log.by_commit(REPO, sha)
            ]
            assert len(github.api.runs_for(sha)) == 1
        stats = world.stream.stats()
        assert (stats.length, stats.pending, stats.dead_letters) == (0, 0, 0)
    finally:
        running.stop()
        for closing in (api, stream, worker.predictions, world):
            if closing is not None:
                closing.close()
    messages = [r.getMessage() for r in caplog.records]
    waiting = [m for m in messages if "unreachable" in m]
    assert waiting[0] == (
        f"Redis at 127.0.0.1:{redis_server.port} unreachable: create the consumer group failed: "
        f"ConnectionError: Error 111 connecting to 127.0.0.1:{redis_server.port}. Connection refused; "
        "retrying in 1s"
    )
    assert sum(m.startswith(f"Redis at 127.0.0.1:{redis_server.port} reachable again") for m in messages) == 1
    assert not any(REDIS_PASSWORD in m for m in messages)


def _work(env: dict[str, str], err: Path) -> subprocess.Popen[bytes]:
    """``defectops events work`` in a process of its own, its stderr in ``err``."""
    with err.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-c", "from defectops.cli import main; main()", "events", "work"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
        )


def _exit_code(worker: subprocess.Popen[bytes]) -> int:
    try:
        return worker.wait(timeout=240)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@pytest.mark.parametrize(
    ("redis_goes", "failed_call"),
    [("after start-up", "receive"), ("before start-up", "create the consumer group")],
)
def test_a_worker_gives_up_after_the_retry_limit_with_one_line_and_exit_11(
    settings_env: dict[str, str], redis_server: RedisServer, tmp_path: Path, redis_goes: str, failed_call: str
) -> None:
    """A lasting outage ends the worker, so an orchestrator restarts it and the outage shows as restarts; the
    same bound when Redis never came up at all (the worker used to exit at once)."""
    err = tmp_path / "worker.err"
    if redis_goes == "before start-up":
        redis_server.kill()
    worker = _work({**settings_env, "DEFECTOPS_EVENTS_STREAM_RETRY_SECONDS": "1.5"}, err)
    if redis_goes == "after start-up":
        wait_for(lambda: "is waiting for events" in err.read_text(), "the worker starts")
        redis_server.kill()
    assert _exit_code(worker) == 11
    text = err.read_text()
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"error: Redis at 127.0.0.1:{redis_server.port} unreachable for "), text
    assert (
        f"giving up (DEFECTOPS_EVENTS_STREAM_RETRY_SECONDS=1.5): {failed_call} failed: ConnectionError: "
        in last
    )
    assert [line for line in text.splitlines() if line.startswith("error:")] == [last]
    assert f"{failed_call} failed: ConnectionError: Error 111 connecting to" in text
    assert "retrying in 1s" in text
    assert "Traceback" not in text
    assert REDIS_PASSWORD not in text


def test_a_wrong_password_at_start_up_is_not_waited_out(
    settings_env: dict[str, str], redis_server: RedisServer, tmp_path: Path
) -> None:
    """Only an unreachable stream is waited out: a refusal is one line and exit 11 at once, as before."""
    err = tmp_path / "worker.err"
    url = settings_env["DEFECTOPS_EVENTS_REDIS_URL"].replace(REDIS_PASSWORD, "not-the-password")
    worker = _work({**settings_env, "DEFECTOPS_EVENTS_REDIS_URL": url}, err)  # the default 300 s bound
    assert _exit_code(worker) == 11
    text = err.read_text()
    assert text.strip().splitlines()[-1] == (
        f"error: event stream redis://***@127.0.0.1:{redis_server.port}/0: create the consumer group failed: "
        "AuthenticationError: invalid username-password pair or user is disabled."
    ), text
    assert "retrying" not in text
    assert "not-the-password" not in text


def test_while_redis_is_stopped_the_receiver_answers_503_with_retry_after(
    settings: Settings, upstream: RepoBuilder, redis_server: RedisServer
) -> None:
    # GitHub marks the delivery failed either way; a proxy, a load balancer or a script replaying deliveries
    # reads Retry-After to know when to come back (it was a bare 503, unlike the service's outages).
    events = settings.events
    stream = open_stream(events)
    try:
        with TestClient(create_receiver(events, events.check(settings), stream)) as client:
            redis_server.stop()
            body, headers = signed(push_payload(upstream, upstream.shas[1:], before=upstream.shas[0]))
            webhook = client.post("/webhook", content=body, headers=headers)
            health = client.get("/healthz")
    finally:
        stream.close()
    for response in (webhook, health):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == str(EventStreamUnavailableError.retry_after)
        assert f"127.0.0.1:{redis_server.port}" in response.text
        assert REDIS_PASSWORD not in response.text
