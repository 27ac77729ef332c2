"""The registry or its artifact store not answering is an outage, not a verdict on the model.

* A worker that serves nothing (no champion yet, or the MLflow server did not answer at start-up: a pod that
  starts before the server) loads the champion by itself once it can: before, it stayed 503 until someone
  called ``POST /v1/models/reload``.
* ``POST /v1/models/reload`` while the artifact store (S3, a real server in moto's server mode) does not
  answer is a 503 with ``Retry-After``, and the models served stay: before, it was a 409 "refused", as if
  the version were broken.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from defectops.config import ServeSettings, Settings, TrackingSettings
from defectops.errors import RegistryUnavailableError
from defectops.registry.registry import ModelRegistry
from defectops.registry.runs import TrainingRun
from defectops.registry.tracking import TrackingConfig
from defectops.serving.app import create_app
from s3_server import BUCKET, CREDENTIALS, s3_endpoint
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import (
    ADMIN_TOKEN,
    Clock,
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


def _unreachable_registry(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """The registry of an MLflow server that is not up (yet): a loopback port nobody listens on, with
    credentials in the URL, which must never be shown."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"http://operator:S3CRET@127.0.0.1:{_closed_port()}"
    return ModelRegistry(TrackingConfig.resolve(workspace, TrackingSettings(tracking_uri=url)))


def _predict_one(client, session: Session) -> str:
    response = client.post("/v1/predict", json={"records": [record_of(session.reference, 0)], "top_k": 1})
    assert response.status_code == 200, response.text
    return str(response.json()["predictions"][0]["model_version"])


def test_a_worker_without_a_champion_loads_it_by_itself_once_there_is_one(
    deployed: Deployed, make_client: MakeClient, api_session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """A deployment whose first model is trained after the service started (``defectops run`` registers and
    promotes it, and writes no control file)."""
    waiting = Deployed(f"{deployed.name}-later", deployed.registry, api_session)
    client = make_client(waiting.name, poll_seconds=0.05, degraded_retry_seconds=0.1)
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["detail"] == f"unknown model {waiting.name!r}"

    waiting.register(api_session.good_a, champion=True)
    deadline = time.monotonic() + 120
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "the waiting worker never loaded the champion"
        time.sleep(0.05)
    assert _predict_one(client, api_session) == "1"
    assert f"waited for model {waiting.name!r}: serving {waiting.name} v1" in caplog.text


def test_a_worker_started_before_the_registry_answered_loads_the_champion_once_it_does(
    deployed: Deployed,
    api_session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = _unreachable_registry(api_session.workspace, monkeypatch)
    serve = ServeSettings(
        model_name=deployed.name, admin_token=ADMIN_TOKEN, log_url=f"sqlite:///{tmp_path / 'p.db'}"
    )
    settings = Settings(workspace=api_session.workspace, mode="local")
    with TestClient(create_app(settings, serve, registry=unreachable, clock=Clock())) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        detail = ready.json()["detail"]
        assert detail.startswith(
            f"cannot read model {deployed.name!r} from the registry: http://operator:***@127.0.0.1:"
        )
        assert "did not answer (" in detail
        assert "\n" not in detail
        manager = client.app.state.service.manager  # type: ignore[attr-defined]
        assert isinstance(manager.retry_waiting(), RegistryUnavailableError)  # still down

        manager.registry = deployed.registry  # the server answers now
        assert manager.retry_waiting() is None
        assert client.get("/health/ready").json()["model_version"] == 1
        assert _predict_one(client, api_session) == "1"
        assert manager.retry_waiting() is None  # serving: nothing to wait for
    assert "S3CRET" not in caplog.text
    assert f"no model loaded: cannot read model {deployed.name!r} from the registry" in caplog.text


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
