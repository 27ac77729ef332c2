"""The service exposes the gauges of the latest published monitoring result on /metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from defectops.data.schemas import FEATURES
from defectops.monitoring.monitor import monitor_window
from defectops.monitoring.report import exposition
from defectops.serving.control import ControlFile
from defectops.serving.gauges import PublishedGauges, publish_gauges, published_gauges_path
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import Deployed, MakeClient, Session

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_metrics_include_the_latest_monitoring_result(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    frame = api_session.reference.loc[:, list(FEATURES)].reset_index(drop=True)
    reference, window = frame.iloc[:300].copy(), frame.iloc[300:400].copy()
    window["la"] = window["la"] * 10 + 50  # a shift in change size
    window["score"] = np.linspace(0.05, 0.95, len(window))
    result = monitor_window(reference, window, now=NOW, features=list(FEATURES))
    assert result.state == "drift"
    client = make_client(deployed.name)
    assert "defectops_monitor_drift_detected" not in client.get("/metrics").text  # nothing published yet
    path = published_gauges_path(ControlFile.for_model(api_session.workspace, deployed.name).path)
    publish_gauges(exposition(result), path)
    text = client.get("/metrics").text
    assert "defectops_monitor_drift_detected 1.0" in text
    assert 'defectops_feature_drift_detected{feature="la"} 1.0' in text


def test_published_gauges_are_reread_only_when_the_file_changes(tmp_path: Path, api_session: Session) -> None:
    frame = api_session.reference.loc[:, list(FEATURES)].reset_index(drop=True)
    window = frame.iloc[300:400].copy()
    window["score"] = np.linspace(0.05, 0.95, len(window))
    result = monitor_window(frame.iloc[:300], window, now=NOW, features=list(FEATURES))
    path = tmp_path / "m.monitoring.prom"
    gauges = PublishedGauges(path)
    assert gauges.exposition() == ""
    publish_gauges(exposition(result), path)
    first = gauges.exposition()
    assert "defectops_monitor_window_predictions 100.0" in first
    assert gauges.exposition() is first  # unchanged file: the cached text, not re-read
    path.unlink()  # no published result any more: nothing is exposed
    assert gauges.exposition() == ""
