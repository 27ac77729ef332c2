"""A workspace lock held by another process is a 503 that says when to come back (``Retry-After``), like the
registry's outages: it was a bare 503, so a client had no hint whether or when retrying would help."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.requests import Request

from defectops.errors import DefectOpsError, WorkspaceBusyError
from defectops.locks import exclusive
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import Deployed, MakeClient


def test_a_held_workspace_lock_is_a_503_with_retry_after(
    make_client: MakeClient, deployed: Deployed, tmp_path: Path
) -> None:
    # The mining lock as Miner.locked takes it, held by "another process" (a second open file: flock locks
    # of two open files conflict, as between processes); this one refuses at once instead of waiting.
    lock = tmp_path / "state" / "repo-x.sqlite.lock"
    with (
        exclusive(lock, what="mining repo-x", say=None),
        pytest.raises(WorkspaceBusyError) as busy,
        exclusive(lock, what="mining repo-x", wait_seconds=0, say=None),
    ):
        pass
    app = make_client(deployed.name).app
    handler = app.exception_handlers[DefectOpsError]  # the service's one mapping of errors to answers
    request = Request({"type": "http", "method": "POST", "path": "/v1/commits/score", "headers": []})
    response = asyncio.run(handler(request, busy.value))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(WorkspaceBusyError.retry_after) == "60"
    assert f"holds {lock}" in response.body.decode()
