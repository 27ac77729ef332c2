"""The reference snapshot when the artifact store is down: MLflow reports every failed download as 'path not
found', and `defectops monitor` said "no reference snapshot for run …" (exit 7) while S3 behind the tracking
server was merely unreachable. The run's artifacts live in a real S3 server (moto in server mode); "down" is
the same client pointed at a loopback port nobody listens on."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from defectops.errors import ModelError, NotFoundError
from defectops.registry.runs import load_reference
from defectops.registry.tracking import REFERENCE_ARTIFACT, TrackingConfig, activate
from s3_server import BUCKET, CREDENTIALS, s3_endpoint

__all__ = ["s3_endpoint"]  # the fixture, re-exported

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_tracking(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[TrackingConfig, str]:
    """A workspace registry whose experiment keeps its artifacts in the S3 server; yields it and a run with a
    reference snapshot and one without."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["secret"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)
    config = TrackingConfig.resolve(tmp_path / "ws")
    client = activate(config)
    experiment = client.create_experiment("s3", artifact_location=f"s3://{BUCKET}/{tmp_path.name}")
    run = client.create_run(experiment)
    snapshot = tmp_path / "features.parquet"
    pd.DataFrame({"la": [1.0, 2.0]}).to_parquet(snapshot)
    client.log_artifact(run.info.run_id, str(snapshot), REFERENCE_ARTIFACT.rsplit("/", 1)[0])
    return config, run.info.run_id


def _unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")


def test_the_snapshot_loads_from_s3(s3_tracking: tuple[TrackingConfig, str]) -> None:
    config, run_id = s3_tracking
    assert load_reference(run_id, config=config)["la"].tolist() == [1.0, 2.0]


def test_an_unreachable_store_is_a_store_failure_not_a_missing_snapshot(
    s3_tracking: tuple[TrackingConfig, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, run_id = s3_tracking
    _unreachable(monkeypatch)
    with pytest.raises(ModelError, match="the artifact store failed") as raised:
        load_reference(run_id, config=config)
    assert not isinstance(raised.value, NotFoundError)
    assert f"cannot read the reference snapshot of run {run_id}" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_run_without_a_snapshot_is_still_not_found(s3_tracking: tuple[TrackingConfig, str]) -> None:
    config, _ = s3_tracking
    client = MlflowClient(tracking_uri=config.tracking_uri)
    bare = client.create_run(client.get_run(s3_tracking[1]).info.experiment_id)
    with pytest.raises(NotFoundError, match="no reference snapshot for run"):
        load_reference(bare.info.run_id, config=config)
