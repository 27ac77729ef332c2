"""A real ``defectops serve`` (uvicorn) in a subprocess on 127.0.0.1, spoken to over HTTP.

The durability guarantee end to end: clients fire predictions from several threads; the server is stopped
mid-traffic, gracefully (SIGTERM) or not (SIGKILL); afterwards every prediction a client received an answer for
is in the prediction log. The graceful run uses two worker processes (the multi-worker path: settings through
the environment, Prometheus in multiprocess mode, TCP_NODELAY set by defectops).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from defectops.config import Workspace
from defectops.git import GitRepo
from defectops.mining import MineOptions, Miner
from defectops.predlog import PredictionLog
from sample_repos import build_handworked, build_with_merges
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import ADMIN_TOKEN, Deployed, Session, admin, record_of

SERVE = "import typer; from defectops.cli.serve import serve; typer.run(serve)"
STARTUP_SECONDS = 120


class Server:
    """A ``defectops serve`` child process and the lines it writes to stderr."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: cleanup reaches uvicorn's worker processes too
        )
        self.lines: list[str] = []
        self.url = ""
        started = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.lines.append(line.rstrip())
                found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
                if found:
                    self.url = found.group(1)
                    started.set()
            started.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not started.wait(STARTUP_SECONDS) or not self.url:
            self.stop()
            pytest.fail("server did not start:\n" + "\n".join(self.lines))

    def wait_ready(self, client: httpx.Client, workers: int) -> None:
        # Each worker loads the model in its own lifespan; uvicorn accepts connections once the first is up.
        deadline = time.monotonic() + STARTUP_SECONDS
        while sum("Application startup complete" in line for line in self.lines) < workers:
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail("workers did not start:\n" + "\n".join(self.lines))
            time.sleep(0.05)
        assert client.get("/health/ready").status_code == 200

    def stop(self) -> None:
        """Kill whatever is left of the server's process group (workers too, if the test failed midway)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)


@pytest.fixture
def server_env(api_session: Session, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEFECTOPS_", "MLFLOW_", "PROMETHEUS_"))}
    env.update(
        {
            "DEFECTOPS_WORKSPACE": str(api_session.workspace),
            "DEFECTOPS_MODE": "local",
            "DEFECTOPS_SERVE_ADMIN_TOKEN": ADMIN_TOKEN,
            "DEFECTOPS_SERVE_LOG_URL": f"sqlite:///{tmp_path / 'predictions.db'}",
            "DEFECTOPS_SERVE_POLL_SECONDS": "0.2",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def start_server(server_env: dict[str, str]) -> Iterator[object]:
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(["--port", "0", *args], server_env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _fire(url: str, session: Session, answered: list[str], stop: threading.Event) -> None:
    """Send single-record predictions until told to stop or the server goes away; keep answered ids."""
    with httpx.Client(base_url=url, timeout=30) as client:
        i = 0
        while not stop.is_set():
            try:
                response = client.post(
                    "/v1/predict", json={"records": [record_of(session.reference, i % 400)]}
                )
            except httpx.HTTPError:
                return  # the server stopped listening
            if response.status_code == 200:
                answered.append(response.json()["predictions"][0]["prediction_id"])
            elif response.status_code != 503:  # 503: shutting down, nothing answered
                pytest.fail(f"unexpected {response.status_code}: {response.text}")
            i += 1


def _logged_ids(tmp_path: Path) -> set[str]:
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        window = log.window(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    return set(window["prediction_id"])


def _traffic_until(
    answered: list[str], server: Server, count: int, session: Session
) -> tuple[threading.Event, list[threading.Thread]]:
    stop = threading.Event()
    threads = [threading.Thread(target=_fire, args=(server.url, session, answered, stop)) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while len(answered) < count:
        if time.monotonic() > deadline:
            pytest.fail("too few answers:\n" + "\n".join(server.lines))
        time.sleep(0.01)
    return stop, threads


@pytest.mark.slow  # an integration test of over 15 s: CI's slow run
def test_graceful_stop_of_two_workers_loses_no_answered_prediction(
    deployed: Deployed, start_server, api_session: Session, tmp_path: Path
) -> None:
    server: Server = start_server("--workers", "2", "--model-name", deployed.name)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        server.wait_ready(client, workers=2)
        # Admin over HTTP: put the challenger in the shadow; both workers follow through the control file.
        response = client.put("/v1/traffic", json={"mode": "shadow", "share": 1.0}, headers=admin())
        assert response.status_code == 200, response.text
        time.sleep(1.0)  # > poll interval (0.2 s): the other worker has picked the change up
        metrics = client.get("/metrics").text
        challenger = (
            f'defectops_model_info{{model_name="{deployed.name}",model_version="2",role="challenger"}}'
        )
        assert challenger in metrics

    answered: list[str] = []
    stop, threads = _traffic_until(answered, server, 150, api_session)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=120) == 0, "\n".join(server.lines)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    logged = _logged_ids(tmp_path)
    assert len(answered) >= 150
    assert set(answered) <= logged
    assert not (tmp_path / "predictions.db-wal").exists()  # closed cleanly: the WAL was checkpointed
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        counts = log.counts()
    assert counts.shadow == counts.served  # every served prediction also has its shadow (share 1.0)


@pytest.mark.slow  # an integration test of over 15 s: CI's slow run
def test_a_killed_server_has_logged_every_prediction_it_answered(
    deployed: Deployed, start_server, api_session: Session, tmp_path: Path
) -> None:
    server: Server = start_server("--model-name", deployed.name)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        server.wait_ready(client, workers=1)
    answered: list[str] = []
    stop, threads = _traffic_until(answered, server, 100, api_session)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=60)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    assert len(answered) >= 100
    assert set(answered) <= _logged_ids(tmp_path)


def test_a_local_service_scores_the_commits_of_the_repositories_its_workspace_mined(
    deployed: Deployed, start_server, api_session: Session, tmp_path: Path
) -> None:
    """``defectops run --repo R`` then ``defectops serve``: R is scorable with no ``--repository``; a mined
    clone that has since gone away is not offered."""
    hand = GitRepo.open(build_handworked(tmp_path / "hand").path)
    gone = GitRepo.open(build_handworked(tmp_path / "gone").path)
    workspace = Workspace(api_session.workspace)
    for repo in (hand, gone):
        Miner(repo, workspace, MineOptions()).mine()
    shutil.rmtree(gone.path)

    server = start_server("--model-name", deployed.name)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        server.wait_ready(client, workers=1)
        scored = client.post("/v1/commits/score", json={"repo": hand.repo_id(), "range": "HEAD~1..HEAD"})
        unknown = client.post("/v1/commits/score", json={"repo": gone.repo_id(), "range": "HEAD~1..HEAD"})

    assert scored.status_code == 200, scored.text
    head = subprocess.run(
        ["git", "-C", str(hand.path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert [p["commit_sha"] for p in scored.json()["predictions"]] == [head]
    assert unknown.status_code == 404
    # Other tests of the session may have mined into the shared workspace too: look for these two only.
    mines = next(line for line in server.lines if "/v1/commits/score mines: " in line)
    assert f"{hand.repo_id()} ({hand.path})" in mines
    assert gone.repo_id() not in mines


def test_a_local_service_mines_only_the_repositories_of_the_model_it_serves(
    deployed: Deployed, start_server, api_session: Session, tmp_path: Path
) -> None:
    """Two repositories run in one workspace, each with its model: ``serve --model-name A`` offered both on
    /v1/commits/score and scored B's commits with A's model, logging them as A's predictions."""
    from defectops.mining import RepositoryNames

    ours = GitRepo.open(build_handworked(tmp_path / "ours").path)
    theirs = GitRepo.open(build_with_merges(tmp_path / "theirs").path)  # another root commit: another model
    workspace = Workspace(api_session.workspace)
    for repo in (ours, theirs):
        Miner(repo, workspace, MineOptions()).mine()
    names = RepositoryNames(workspace.root)
    names.model_name(ours, chosen=deployed.name)  # as `defectops run --name` records it
    names.model_name(theirs, chosen=f"{deployed.name}-other")

    server = start_server("--model-name", deployed.name)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        server.wait_ready(client, workers=1)
        scored = client.post("/v1/commits/score", json={"repo": ours.repo_id(), "commit": "HEAD"})
        refused = client.post("/v1/commits/score", json={"repo": theirs.repo_id(), "commit": "HEAD"})

    assert scored.status_code == 200, scored.text
    assert refused.status_code == 404, "\n".join(server.lines)
    assert refused.json()["detail"].startswith(f"unknown repository {theirs.repo_id()!r}")
    mines = next(line for line in server.lines if "/v1/commits/score mines: " in line)
    assert f"{ours.repo_id()} ({ours.path})" in mines
    assert theirs.repo_id() not in mines
