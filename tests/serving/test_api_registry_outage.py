"""The registry or its artifact store not answering is an outage, not a verdict on the model.

* ``POST /v1/models/reload`` while the artifact store (S3, a real server in moto's server mode) does not
  answer is a 503 with ``Retry-After``, and the models served stay: before, it was a 409 "refused", as if
  the version were broken.
"""

from __future__ import annotations

import socket
import time

import pytest

from defectops.config import TrackingSettings
from defectops.registry.runs import TrainingRun
from defectops.registry.tracking import TrackingConfig
from s3_server import BUCKET, CREDENTIALS, s3_endpoint
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import (
    Deployed,
    MakeClient,
    Session,
    _log,
    admin,
    fit_model,
    record_of,
)

__all__ = ["s3_endpoint"]  # the fixture, re-exported


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _predict_one(client, session: Session) -> str:
    response = client.post("/v1/predict", json={"records": [record_of(session.reference, 0)], "top_k": 1})
    assert response.status_code == 200, response.text
    return str(response.json()["predictions"][0]["model_version"])


@pytest.fixture
def s3_run(
    api_session: Session, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> TrainingRun:
    """A model logged into the session's registry with its artifacts in the S3 server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["secret"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)
    tracking = TrackingSettings(
        experiment="in-s3", artifacts=f"s3://{BUCKET}/{request.node.name[:40]}-{time.time_ns()}"
    )
    config = TrackingConfig.resolve(api_session.workspace, tracking)
    model, frame = fit_model(11)
    return _log(model, frame, config, "in-s3")


@pytest.mark.s3
def test_reload_while_the_artifact_store_is_down_is_503_with_retry_after_and_the_model_serves_on(
    deployed: Deployed,
    make_client: MakeClient,
    api_session: Session,
    s3_run: TrainingRun,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_s3 = Deployed(f"{deployed.name}-s3", deployed.registry, api_session)
    in_s3.register(s3_run, champion=True)
    client = make_client(in_s3.name)
    assert client.get("/health/ready").json()["model_version"] == 1
    assert client.post("/v1/models/reload", headers=admin()).status_code == 200

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")  # S3 is down
    response = client.post("/v1/models/reload", headers=admin())
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "30"
    detail = response.json()["detail"]
    assert detail.startswith(f"cannot download the artifact of {in_s3.name} v1: http://127.0.0.1:")
    assert "did not answer (" in detail
    assert "\n" not in detail
    # The service serves the model it has, and says what failed.
    assert client.get("/health/ready").status_code == 200
    assert client.get("/v1/models").json()["last_error"] == detail
    assert _predict_one(client, api_session) == "1"

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)  # S3 is back
    response = client.post("/v1/models/reload", headers=admin())
    assert response.status_code == 200, response.text
    assert response.json()["last_error"] is None
