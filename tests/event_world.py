"""Shared pieces of the event tests and benchmarks: the secret, token and repository name, the environment of a
receiver or worker, signed webhook deliveries, and a worker running in a thread of the test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from defectops.config import Settings, Workspace
from defectops.events import GitHubClient, Worker, create_receiver, open_stream, sign
from defectops.predlog import PredictionLog, default_url
from github_api import GitHubServer
from gitrepo import RepoBuilder

SECRET = "a-test-webhook-secret-of-some-length"
TOKEN = "ghs_test_token_0123456789"
REPO = "acme/widgets"
#: The password of the tests' Redis (in its URL): never in a log line or an error.
REDIS_PASSWORD = "redis-test-password-7f3c"


def environment(
    tmp_path: Path,
    redis_url: str,
    github: GitHubServer,
    upstream: RepoBuilder,
    models: tuple[Path, Path],
    **extra: str,
) -> dict[str, str]:
    """The DEFECTOPS_* variables of a receiver or worker of these tests."""
    return {
        "DEFECTOPS_WORKSPACE": str(tmp_path / "ws"),
        "DEFECTOPS_EVENTS_SECRET": SECRET,
        "DEFECTOPS_EVENTS_REDIS_URL": redis_url,
        "DEFECTOPS_EVENTS_REPOSITORIES": json.dumps({REPO: str(upstream.path)}),
        "DEFECTOPS_EVENTS_MODEL_DIR": str(models[0]),
        "DEFECTOPS_EVENTS_CHALLENGER_DIR": str(models[1]),
        "DEFECTOPS_EVENTS_BLOCK_MS": "100",
        "DEFECTOPS_GITHUB_API_URL": github.url,
        "DEFECTOPS_GITHUB_TOKEN": TOKEN,
        **extra,
    }


def push_payload(
    upstream: RepoBuilder, shas: list[str], *, before: str, ref: str = "refs/heads/main", forced: bool = False
) -> dict[str, object]:
    return {
        "ref": ref,
        "before": before,
        "after": shas[-1],
        "forced": forced,
        "deleted": False,
        "repository": {"full_name": "Acme/Widgets"},
        "commits": [{"id": sha, "distinct": True} for sha in shas],
    }


def signed(
    payload: object, *, event: str = "push", delivery: str = "d-1", secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(secret, body),
        "Content-Type": "application/json",
    }


def wait_for(condition: Callable[[], bool], what: str, *, timeout: float = 240.0) -> None:
    """Poll ``condition`` until it holds; AssertionError naming ``what`` if it never does (a hang, not a
    timing assertion: the limit is far beyond any expected wait on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


class WorkerThread:
    """A scoring worker running in a thread of the test until :meth:`stop`; ``error`` is what ended it."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:  # handed to the test, which asserts on it
            self.error = exc

    def stop(self) -> None:
        """Stop the worker and wait for it (the event in hand is finished first)."""
        self.worker.stop()
        self.thread.join(timeout=240)
        assert not self.thread.is_alive(), "the worker did not stop"


class World:
    """The receiver (in a TestClient), the stream, the GitHub client and the prediction log of one test."""

    def __init__(self, settings: Settings, github: GitHubServer) -> None:
        self.settings = settings
        self.github = github
        self.stream = open_stream(settings.events)
        app = create_receiver(settings.events, settings.events.check(settings), self.stream)
        self.client = TestClient(app).__enter__()  # one event loop for every request (and the lifespan)
        self.api = GitHubClient(github.url, TOKEN, sleep=lambda _s: None)
        self.log = PredictionLog.from_url(default_url(Workspace.from_settings(settings).root))

    def send(self, payload: object, *, event: str = "push", delivery: str) -> int:
        body, headers = signed(payload, event=event, delivery=delivery)
        return self.client.post("/webhook", content=body, headers=headers).status_code

    def work(self) -> Worker:
        worker = Worker(self.settings, self.stream, self.api, consumer="w1", predictions=self.log)
        worker.run(idle_exit=True)
        return worker

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.api.close()
        self.stream.close()
        self.log.close()
