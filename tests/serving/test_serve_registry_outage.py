"""``defectops serve`` with an MLflow tracking server and an S3 artifact store that fail, as real processes on
loopback (deploy_stack: moto's S3 server, ``mlflow server`` proxying artifacts to it, the installed
``defectops`` executable).

* ``serve --wait-for-model`` started before the MLflow server (a Kubernetes pod that starts first) exited 6
  at once ("cannot list registered models: ... Connection refused"). It now listens, answers 503 on
  ``/health/ready`` saying what it waits for, logs one line per attempt, and serves the champion once the
  server is up and has one.
* ``POST /v1/models/reload`` with the S3 server stopped answered 409 ("refused", as if the version were
  broken); it is a 503 with ``Retry-After``, and the model served stays.
"""

from __future__ import annotations

import os
import subprocess
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from defectops.config import TrackingSettings
from defectops.registry.registry import ModelRegistry
from defectops.registry.tracking import TrackingConfig
from deploy_stack import DEFECTOPS, free_port, mlflow_server, s3_server, stop, wait_http
from serving.conftest_api import NOW, _log, fit_model, record_of

pytestmark = [pytest.mark.s3, pytest.mark.slow]

BUCKET = "defectops-outage"
SECRET = "S3CRET-PASSWORD"
ADMIN = {"Authorization": "Bearer defectops-local-admin"}  # local mode on loopback: the documented default


def _register_champion(tracking_url: str, workspace: Path) -> None:
    """A model logged and registered through the tracking server, its artifacts in S3 behind it."""
    config = TrackingConfig.resolve(workspace, TrackingSettings(tracking_uri=tracking_url))
    model, frame = fit_model(0)
    run = _log(model, frame, config, "late")
    registry = ModelRegistry(config)
    version = registry.register("jit", run.model_uri, who="test", why="first model", now=NOW)
    registry.promote("jit", version.version, "test", "first model", now=NOW)


def test_serve_waits_for_a_late_mlflow_server_and_a_stopped_store_is_a_503(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    mlflow_port, serve_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEFECTOPS_", "MLFLOW_", "AWS_"))}
    env |= {
        "MLFLOW_TRACKING_URI": f"http://operator:{SECRET}@127.0.0.1:{mlflow_port}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # the documented bound: one attempt per call
        "DEFECTOPS_WORKSPACE": str(tmp_path / "ws"),
        "DEFECTOPS_SERVE_DEGRADED_RETRY_SECONDS": "1",
        "DEFECTOPS_SERVE_POLL_SECONDS": "0.2",
    }
    url = f"http://127.0.0.1:{serve_port}"
    served = logs / "serve.log"
    with ExitStack() as store, served.open("wb") as log:
        endpoint = store.enter_context(s3_server(BUCKET))
        process = subprocess.Popen(
            [DEFECTOPS, "serve", "--wait-for-model", "--model-name", "jit", "--port", str(serve_port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            # 1. No MLflow server yet: live, not ready, and it says why (no credentials).
            wait_http(f"{url}/health/live", process, timeout=240)
            ready = httpx.get(f"{url}/health/ready", timeout=30)
            assert ready.status_code == 503
            detail = ready.json()["detail"]
            assert detail.startswith(
                "cannot read model 'jit' from the registry: http://operator:***@127.0.0.1:"
            )
            assert "did not answer (" in detail

            # 2. The server starts late, then the first model is registered: the worker loads it by itself.
            backend = f"sqlite:///{tmp_path / 'mlflow.db'}"
            artifacts = f"s3://{BUCKET}/mlflow"
            with mlflow_server(backend, artifacts, endpoint, logs, port=mlflow_port) as tracking:
                _register_champion(tracking, tmp_path / "trainer")
                wait_http(f"{url}/health/ready", process, timeout=600)
                record = {"records": [record_of(fit_model(0)[1], 0)], "top_k": 1}
                answer = httpx.post(f"{url}/v1/predict", json=record, timeout=60)
                assert answer.status_code == 200, answer.text
                assert answer.json()["predictions"][0]["model_version"] == "1"

                # 3. The S3 server stops: a reload is an outage (503, Retry-After), the model serves on.
                store.close()
                reload = httpx.post(f"{url}/v1/models/reload", headers=ADMIN, timeout=300)
                assert reload.status_code == 503, reload.text
                assert reload.headers["retry-after"] == "30"
                reason = reload.json()["detail"]
                assert reason.startswith(
                    "cannot download the artifact of jit v1: MLflow's artifact proxy at "
                )
                assert "\n" not in reason
                assert httpx.get(f"{url}/health/ready", timeout=30).status_code == 200
                again = httpx.post(f"{url}/v1/predict", json=record, timeout=60)
                assert again.status_code == 200, again.text
        finally:
            stop(process)
    output = served.read_text()
    waits = [line for line in output.splitlines() if line.startswith("waiting for model 'jit': ")]
    assert waits, output
    assert all("next try in" in line for line in waits)
    assert "waited for model 'jit': serving jit v1" in output
    assert "Traceback" not in output
    assert SECRET not in output
