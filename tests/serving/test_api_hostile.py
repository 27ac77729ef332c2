"""Hostile requests against a real ``defectops serve`` on 127.0.0.1 (issue #14), spoken to over HTTP.

One server per module (starting one costs seconds): the amplification request, bodies that are not JSON by
their Content-Type, bodies that never finish arriving, JSON too wide or too deep, and 422 answers that must
stay small whatever the request. After each hostile request the server still answers an ordinary one.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from defectops.predlog import PredictionLog
from defectops.registry.registry import ModelRegistry
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import ADMIN_TOKEN, Deployed, Session, record_of
from serving.test_api_server import Server

FEEDBACK_TOKEN = "feedback-token-5f0c8a1e9b7d4c2a8e6f"


class Running:
    """The module's server and what a test needs to talk to it."""

    def __init__(self, server: Server, log_path: Path, deployed: Deployed, session: Session) -> None:
        self.server = server
        self.url = server.url
        self.log_path = log_path
        self.deployed = deployed
        self.session = session

    def logged(self) -> int:
        with PredictionLog.from_url(f"sqlite:///{self.log_path}") as log:
            return log.counts().served

    def good_body(self) -> dict[str, object]:
        return {"records": [record_of(self.session.reference, 3)], "top_k": 0}


@pytest.fixture(scope="module")
def running(api_session: Session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("hostile")
    deployed = Deployed("hostile-requests", ModelRegistry(api_session.config), api_session)
    deployed.register(api_session.good_a, champion=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEFECTOPS_", "MLFLOW_", "PROMETHEUS_"))}
    env.update(
        {
            "DEFECTOPS_WORKSPACE": str(api_session.workspace),
            "DEFECTOPS_MODE": "local",
            "DEFECTOPS_SERVE_ADMIN_TOKEN": ADMIN_TOKEN,
            "DEFECTOPS_SERVE_FEEDBACK_TOKEN": FEEDBACK_TOKEN,
            "DEFECTOPS_SERVE_LOG_URL": f"sqlite:///{folder / 'predictions.db'}",
            "DEFECTOPS_SERVE_BODY_TIMEOUT_SECONDS": "1",
            "DEFECTOPS_SERVE_ACCESS_LOG": "true",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    server = Server(["--port", "0", "--model-name", deployed.name], env)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            server.wait_ready(client, workers=1)
        yield Running(server, folder / "predictions.db", deployed, api_session)
    finally:
        server.stop()


def _post(running: Running, path: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.post(running.url + path, content=body, headers={"content-type": content_type}, timeout=120)


def _still_serves(running: Running) -> None:
    answer = httpx.post(running.url + "/v1/predict", json=running.good_body(), timeout=60)
    assert answer.status_code == 200, answer.text


def test_the_amplification_request_costs_a_small_answer(running: Running) -> None:
    # Issue #14: 400,000 unknown keys came back as a 41.9 MB list of errors after seconds of work.
    hostile = json.dumps({"records": [{f"k{i}": 0 for i in range(400_000)}]}).encode()
    answer = _post(running, "/v1/predict", hostile)
    assert answer.status_code == 413
    assert len(answer.content) < 300
    assert "400000 keys" in answer.json()["detail"]
    _still_serves(running)


def test_a_422_lists_a_bounded_number_of_problems(running: Running) -> None:
    # Within every size limit (30 keys per object), but 1,000 records of 30 unknown keys each.
    records = [{f"unknown_{k}": 1 for k in range(30)} for _ in range(1000)]
    answer = _post(running, "/v1/predict", json.dumps({"records": records}).encode())
    assert answer.status_code == 422
    document = answer.json()
    assert 1 <= len(document["detail"]) <= 20
    assert len(answer.content) < 8_000
    assert document["detail"][0]["type"] == "extra_forbidden"


def test_long_values_are_cut_in_the_error_answer(running: Running) -> None:
    key = "x" * 100_000
    answer = _post(running, "/v1/predict", json.dumps({"records": [{key: 1}]}).encode())
    assert answer.status_code == 422
    assert len(answer.content) < 2_000


def test_json_nested_too_deep_is_413(running: Running) -> None:
    body = b'{"records": [{"la": ' + b"[" * 40 + b"]" * 40 + b"}]}"
    answer = _post(running, "/v1/predict", body)
    assert answer.status_code == 413
    assert "levels deep" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/predict", "text/plain"),
        ("/v1/predict", "application/x-www-form-urlencoded"),
        ("/v1/feedback", "text/plain"),
        ("/v1/predict", "multipart/form-data; boundary=x"),
    ],
)
def test_a_body_a_browser_may_send_without_preflight_is_415(
    running: Running, path: str, content_type: str
) -> None:
    before = running.logged()
    answer = _post(running, path, json.dumps(running.good_body()).encode(), content_type)
    assert answer.status_code == 415
    assert "application/json" in answer.json()["detail"]
    assert running.logged() == before


def test_json_with_a_charset_is_accepted(running: Running) -> None:
    body = json.dumps(running.good_body()).encode()
    answer = _post(running, "/v1/predict", body, "application/json; charset=utf-8")
    assert answer.status_code == 200, answer.text


def test_a_body_that_never_finishes_arriving_is_408(running: Running) -> None:
    url = urlparse(running.url)
    with socket.create_connection((url.hostname, url.port), timeout=60) as conn:
        conn.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"records": ['
        )
        reply = conn.recv(4096)  # the server answers without waiting for the rest
    assert reply.startswith(b"HTTP/1.1 408"), reply
    _still_serves(running)


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        # Colons, brackets and escaped quotes inside strings are not structure.
        (json.dumps({"records": [{"message": 'a "quoted": {x} [y]' + ":" * 500, "la": 1}] * 40}), False),
        (json.dumps({"records": [{"message": "ends in a backslash \\", "la": 1}] * 40}), False),
        # Keys split by nested objects still belong to their object.
        (json.dumps({"r": {f"k{i}": ({} if i % 2 else 0) for i in range(200)}}), True),
        # A key with quotes and braces in its name.
        (json.dumps({"r": {f'k"{{{i}\\': 0 for i in range(100)}}), True),
        (json.dumps({"records": [{f"k{i}": 0 for i in range(64)}]}), False),
        (json.dumps({"records": [{f"k{i}": 0 for i in range(65)}]}), True),
    ],
)
def test_the_shape_check_counts_keys_outside_strings(body: str, refused: bool) -> None:
    from defectops.errors import PayloadTooLargeError
    from defectops.serving.guard import check_json_shape

    if refused:
        with pytest.raises(PayloadTooLargeError):
            check_json_shape(body.encode(), max_keys=64, max_depth=8)
    else:
        check_json_shape(body.encode(), max_keys=64, max_depth=8)


def test_a_token_in_the_url_is_refused_and_feedback_needs_its_token(running: Running) -> None:
    body = {"repo": "acme/app", "commit_sha": "ab" * 20, "label": 1}
    assert httpx.post(running.url + "/v1/feedback", json=body, timeout=60).status_code == 401
    in_url = httpx.post(running.url + f"/v1/feedback?access_token={FEEDBACK_TOKEN}", json=body, timeout=60)
    assert in_url.status_code == 400
    reload = httpx.post(running.url + f"/v1/models/reload?token={ADMIN_TOKEN}", timeout=60)
    assert reload.status_code == 400
    written = httpx.post(
        running.url + "/v1/feedback",
        json=body,
        headers={"Authorization": f"Bearer {FEEDBACK_TOKEN}"},
        timeout=60,
    )
    assert written.status_code == 201, written.text


def test_the_access_log_never_shows_a_query_string() -> None:
    import logging

    from defectops.serving.server import StripQueryFilter, log_config

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", f"/v1/models/reload?token={ADMIN_TOKEN}", "1.1", 400), None,
    )  # fmt: skip
    assert StripQueryFilter().filter(record)
    assert ADMIN_TOKEN not in record.getMessage()
    assert "/v1/models/reload?<query removed>" in record.getMessage()
    assert log_config()["handlers"]["access"]["filters"] == ["strip_query"]


def test_a_record_with_every_field_fits_the_default_key_limit() -> None:
    """The key limit refuses hostile bodies, never a record that fills every field the schema offers."""
    from defectops.config import ServeSettings
    from defectops.serving.schemas import ChangeRecord

    assert len(ChangeRecord.model_fields) <= ServeSettings().json_max_object_keys
