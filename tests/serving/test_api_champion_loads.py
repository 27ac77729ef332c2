"""A champion always loads, at run time too (issue #14): a reload re-reads an artifact whose version number did
not change and keeps the old model when the new bytes fail; a service whose champion does not load at start
serves the last good champion of the audit history, degraded and saying so."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest

from defectops.data.schemas import FEATURES
from defectops.registry.runs import TrainingRun
from defectops.registry.tracking import TrackingConfig, activate
from defectops.serving.manager import retry_delays
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import NOW, Deployed, MakeClient, Session, _log, admin, fit_model, record_of


def _artifact_dir(run: TrainingRun, config: TrackingConfig) -> Path:
    import mlflow

    activate(config)
    return Path(mlflow.get_logged_model(run.model_id).artifact_location.removeprefix("file://"))


def _own_run(session: Session, seed: int, name: str) -> TrainingRun:
    """A run logged for this test alone (its files are damaged or replaced; shared runs must stay intact)."""
    model, frame = fit_model(seed)
    return _log(model, frame, session.config, name)


def _truncate(run: TrainingRun, config: TrackingConfig) -> None:
    files = [p for p in _artifact_dir(run, config).rglob("model.*") if p.suffix in (".skops", ".pkl")]
    assert files
    for path in files:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


def _replace_artifact(target: TrainingRun, source: TrainingRun, config: TrackingConfig) -> None:
    """Put ``source``'s artifact files in place of ``target``'s: same version number, other bytes."""
    into, origin = _artifact_dir(target, config), _artifact_dir(source, config)
    for path in origin.rglob("*"):
        if path.is_file():
            destination = into / path.relative_to(origin)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def _probabilities(client, session: Session) -> list[float]:
    records = [record_of(session.reference, i) for i in range(5)]
    response = client.post("/v1/predict", json={"records": records, "top_k": 1})
    assert response.status_code == 200, response.text
    return [p["probability"] for p in response.json()["predictions"]]


def _champion(client) -> dict:
    body = client.get("/v1/models").json()
    assert body["champion"] is not None
    return body["champion"]


def _degraded_gauge(client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("defectops_degraded "):
            return float(line.split()[1])
    raise AssertionError("no defectops_degraded in /metrics")


def test_reload_re_reads_an_artifact_replaced_under_the_same_version(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    own = _own_run(api_session, 3, "replaced")
    version = deployed.register(own, champion=True)
    client = make_client(deployed.name)
    before, digest = _probabilities(client, api_session), _champion(client)["artifact_digest"]
    assert digest
    assert _champion(client)["version"] == version

    _replace_artifact(own, api_session.good_b, api_session.config)
    assert _probabilities(client, api_session) == before  # nothing changes until the service is told
    response = client.post("/v1/models/reload", headers=admin())
    assert response.status_code == 200, response.text
    assert response.json()["champion"]["version"] == version
    assert response.json()["champion"]["artifact_digest"] != digest
    after = _probabilities(client, api_session)
    expected = api_session.model_b.predict_proba(api_session.reference.iloc[0:5][list(FEATURES)])[:, 1]
    assert after == pytest.approx(expected.tolist(), abs=1e-12)
    assert after != pytest.approx(before, abs=1e-9)


def test_reload_of_an_artifact_damaged_under_the_same_version_keeps_the_old_model(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    own = _own_run(api_session, 4, "damaged")
    version = deployed.register(own, champion=True)
    client = make_client(deployed.name)
    before, digest = _probabilities(client, api_session), _champion(client)["artifact_digest"]

    _truncate(own, api_session.config)
    response = client.post("/v1/models/reload", headers=admin())
    assert response.status_code == 409
    assert f"v{version} is refused" in response.json()["detail"]
    body = client.get("/v1/models").json()
    assert body["champion"]["version"] == version
    assert body["champion"]["artifact_digest"] == digest
    assert f"v{version}" in body["last_error"]
    assert client.get("/health/ready").status_code == 200
    assert _probabilities(client, api_session) == before


def test_another_worker_re_reads_an_artifact_a_reload_found_changed(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    own = _own_run(api_session, 5, "followed")
    deployed.register(own, champion=True)
    worker_a, worker_b = make_client(deployed.name), make_client(deployed.name)
    digest = _champion(worker_b)["artifact_digest"]

    _replace_artifact(own, api_session.good_b, api_session.config)
    assert worker_a.post("/v1/models/reload", headers=admin()).status_code == 200
    assert worker_b.app.state.service.manager.poll_once() is True
    assert _champion(worker_b)["artifact_digest"] == _champion(worker_a)["artifact_digest"] != digest
    assert _probabilities(worker_b, api_session) == _probabilities(worker_a, api_session)


def test_a_champion_broken_at_start_is_replaced_by_the_last_good_one_loudly_and_degraded(
    deployed: Deployed, make_client: MakeClient, api_session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    own = _own_run(api_session, 6, "broken-at-start")
    broken = deployed.register(own, champion=True)  # v3 loads when it is promoted...
    _truncate(own, api_session.config)  # ...and is damaged in the artifact store afterwards

    with caplog.at_level(logging.ERROR, logger="defectops.serving"):
        client = make_client(deployed.name)
    assert any("DEGRADED" in r.getMessage() and f"v{broken}" in r.getMessage() for r in caplog.records)
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["degraded"] is True
    assert ready.json()["model_version"] == 1
    assert f"v{broken} does not load" in ready.json()["detail"]
    assert _degraded_gauge(client) == 1.0
    body = client.get("/v1/models").json()
    assert body["champion"]["version"] == 1
    assert f"v{broken}" in body["degraded"]
    expected = api_session.model_a.predict_proba(api_session.reference.iloc[0:5][list(FEATURES)])[:, 1]
    assert _probabilities(client, api_session) == pytest.approx(expected.tolist(), abs=1e-12)

    # A reload that still finds the champion broken keeps the fallback and the degraded mark.
    assert client.post("/v1/models/reload", headers=admin()).status_code == 409
    assert client.get("/health/ready").json()["status"] == "degraded"
    # Rolling back in the registry makes the served version the champion again: no longer degraded.
    response = client.post("/v1/models/rollback", json={"why": "v3 is damaged"}, headers=admin())
    assert response.status_code == 200, response.text
    assert response.json()["champion"]["version"] == 1
    assert response.json()["degraded"] is None
    assert client.get("/health/ready").json() == {
        "status": "ready", "detail": None, "degraded": False, "model_name": deployed.name, "model_version": 1,
    }  # fmt: skip
    assert _degraded_gauge(client) == 0.0


def test_a_broken_champion_without_an_earlier_good_one_is_not_ready(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    own = _own_run(api_session, 7, "alone")
    name = deployed.name + "-alone"
    version = deployed.registry.register(name, own.model_uri, who="test", why="test", now=NOW).version
    deployed.registry.promote(name, version, "test", "test", now=NOW)
    _truncate(own, api_session.config)

    client = make_client(name)
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not ready"
    assert f"v{version} is refused" in ready.json()["detail"]
    assert _degraded_gauge(client) == 0.0


def _model_files(run: TrainingRun, config: TrackingConfig) -> dict[Path, bytes]:
    return {
        p: p.read_bytes()
        for p in _artifact_dir(run, config).rglob("model.*")
        if p.suffix in (".skops", ".pkl")
    }


def test_a_degraded_worker_retries_the_champion_and_recovers_once_it_loads(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    own = _own_run(api_session, 8, "repaired")
    broken = deployed.register(own, champion=True)
    intact = _model_files(own, api_session.config)
    _truncate(own, api_session.config)
    client = make_client(deployed.name)
    manager = client.app.state.service.manager
    assert client.get("/health/ready").json()["status"] == "degraded"

    assert manager.retry_degraded() is False  # still broken: the fallback serves on, still degraded
    assert client.get("/health/ready").json()["status"] == "degraded"
    assert _champion(client)["version"] == 1

    for path, data in intact.items():  # the store is repaired (or reachable again)
        path.write_bytes(data)
    assert manager.retry_degraded() is True
    assert client.get("/health/ready").json() == {
        "status": "ready", "detail": None, "degraded": False, "model_name": deployed.name,
        "model_version": broken,
    }  # fmt: skip
    assert _degraded_gauge(client) == 0.0
    model, _frame = fit_model(8)
    expected = model.predict_proba(api_session.reference.iloc[0:5][list(FEATURES)])[:, 1]
    assert _probabilities(client, api_session) == pytest.approx(expected.tolist(), abs=1e-12)
    assert manager.retry_degraded() is False  # not degraded: nothing to retry


def test_the_poller_retries_by_itself(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    own = _own_run(api_session, 9, "retried-alone")
    broken = deployed.register(own, champion=True)
    intact = _model_files(own, api_session.config)
    _truncate(own, api_session.config)
    client = make_client(deployed.name, poll_seconds=0.05, degraded_retry_seconds=0.1)
    assert client.get("/health/ready").json()["status"] == "degraded"
    for path, data in intact.items():
        path.write_bytes(data)
    deadline = time.monotonic() + 120
    while client.get("/health/ready").json()["status"] == "degraded":
        assert time.monotonic() < deadline, "the degraded worker never retried the champion"
        time.sleep(0.05)
    assert _champion(client)["version"] == broken


def test_retries_wait_twice_as_long_after_each_failure_up_to_an_hour() -> None:
    delays = retry_delays(60.0)
    assert [next(delays) for _ in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    longer = retry_delays(7200.0)  # a first wait longer than the cap is kept
    assert [next(longer) for _ in range(2)] == [7200, 7200]
