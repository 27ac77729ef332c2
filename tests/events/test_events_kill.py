"""Exactly-once effects from at-least-once delivery, with real worker processes killed by SIGKILL.

Worker A takes a push of two commits, logs their predictions and posts the first check run; the GitHub server
stores that run and holds its answer, and A is killed right then (SIGKILL: no cleanup, no ack). The event
stays pending. Worker B claims it once the visibility timeout has passed (XAUTOCLAIM), finds the rows and the
check run A left, and adds only the missing check run: one prediction row per commit and model, one check
run per commit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from defectops.config import Settings, Workspace
from defectops.events import create_receiver, open_stream
from defectops.predlog import PredictionLog, default_url
from event_world import REPO, push_payload, signed
from github_api import GitHubServer
from gitrepo import RepoBuilder


def _worker(consumer: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    err = tmp_path / f"worker-{consumer}.err"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from defectops.cli import main; main()",
            "events",
            "work",
            "--consumer",
            consumer,
            "--max-events",
            "1",
        ],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=err.open("wb"),
        start_new_session=True,
    )
    return process, err


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.slow  # an integration test of over 15 s: CI's slow run
@pytest.mark.parametrize("stream_backend", ["redis", "kafka"], indirect=True)
def test_a_killed_worker_s_event_is_finished_once_by_another(
    settings_env: dict[str, str],
    github: GitHubServer,
    upstream: RepoBuilder,
    tmp_path: Path,
    monkeypatch,
) -> None:
    monkeypatch.setenv("DEFECTOPS_EVENTS_VISIBILITY_TIMEOUT", "1")
    settings = Settings()
    stream = open_stream(settings.events)
    first, *pushed = upstream.shas
    body, headers = signed(push_payload(upstream, pushed, before=first), delivery="kill-1")
    with TestClient(create_receiver(settings.events, settings.events.check(settings), stream)) as client:
        assert client.post("/webhook", content=body, headers=headers).status_code == 202

    github.api.hold_creations = True
    a, a_err = _worker("A", tmp_path)
    b = None
    try:
        assert github.api.created.wait(timeout=240), a_err.read_text()
        _kill(a)
        assert a.returncode == -signal.SIGKILL
        assert len(github.api.check_runs) == 1  # A posted the first commit's run and died before the second
        stats = stream.stats()
        assert (stats.length, stats.pending) == (1, 1)  # not acknowledged: still in the stream, pending

        github.api.hold_creations = False
        github.api.release.set()
        b, b_err = _worker("B", tmp_path)
        assert b.wait(timeout=240) == 0, b_err.read_text()
    finally:
        _kill(a)
        if b is not None:
            _kill(b)

    log = b_err.read_text()
    assert (
        "delivery kill-1: scored 2 commit(s), logged 0 prediction(s), reported 1 (1 already reported)" in log
    )
    for sha in pushed:
        assert len(github.api.runs_for(sha)) == 1
    with PredictionLog.from_url(default_url(Workspace.from_settings(settings).root)) as predictions:
        for sha in pushed:
            rows = predictions.by_commit(REPO, sha)
            assert sorted((r.model_name, r.served) for r in rows) == [
                ("challenger", False),
                ("champion", True),
            ]
    stats = stream.stats()
    assert (stats.length, stats.pending, stats.dead_letters) == (0, 0, 0)
    stream.close()
