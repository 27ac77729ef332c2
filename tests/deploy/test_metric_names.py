"""Every metric the Prometheus rules and the Grafana dashboard use is one the service really exports.

The service here is the app ``defectops serve`` runs (``create_app`` on a registered champion and
challenger), after the traffic that makes every series appear: predictions answered by both models (a
canary split), feedback, and a monitoring result published for it as ``defectops heal`` publishes one.
The names are compared with the sample names of its ``/metrics`` (``_total``, ``_bucket``, ``_sum``,
``_count`` included), not with a list kept by hand. The dashboard is also loaded and checked for shape.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import yaml

from defectops.data.schemas import FEATURES
from defectops.monitoring.monitor import monitor_window
from defectops.monitoring.report import exposition
from defectops.serving.control import ControlFile
from defectops.serving.gauges import publish_gauges, published_gauges_path
from deploy_tools import DEPLOY
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import Deployed, MakeClient, Session, admin, record_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NAME = re.compile(r"\bdefectops_[a-z0-9_]+\b")
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "defectops.json"


def _rule_expressions() -> list[str]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "defectops.yml").read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _dashboard_targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for panel in dashboard["panels"] for t in panel.get("targets", [])]


def _exported_names(deployed: Deployed, make_client: MakeClient, api_session: Session) -> set[str]:
    client = make_client(deployed.name)
    answer = client.put("/v1/traffic", json={"mode": "canary", "share": 0.5}, headers=admin())
    assert answer.status_code == 200, answer.text
    frame = api_session.reference
    records = [record_of(frame, row) for row in range(40)]
    answer = client.post("/v1/predict", json={"records": records, "top_k": 1})
    assert answer.status_code == 200, answer.text
    versions = {p["model_version"] for p in answer.json()["predictions"]}
    assert versions == {"1", "2"}  # champion and challenger both answered
    prediction_id = answer.json()["predictions"][0]["prediction_id"]
    # writing a label takes a token (issue #14): the admin's here
    feedback = {"prediction_id": prediction_id, "label": 1}
    assert client.post("/v1/feedback", json=feedback, headers=admin()).status_code == 201
    # What `defectops heal` publishes for the served model after its monitor step.
    features = frame.loc[:, list(FEATURES)].reset_index(drop=True)
    window = features.iloc[300:400].copy()
    window["score"] = np.linspace(0.05, 0.95, len(window))
    result = monitor_window(features.iloc[:300], window, now=NOW, features=list(FEATURES))
    path = published_gauges_path(ControlFile.for_model(api_session.workspace, deployed.name).path)
    publish_gauges(exposition(result), path)
    text = client.get("/metrics").text
    return {
        line.split("{", 1)[0].split(" ", 1)[0] for line in text.splitlines() if line.startswith("defectops_")
    }


def test_rules_and_dashboard_use_only_exported_metrics(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    exported = _exported_names(deployed, make_client, api_session)
    dashboard = json.loads(DASHBOARD.read_text())
    used_by_rules = {name for expr in _rule_expressions() for name in NAME.findall(expr)}
    used_by_dashboard = {
        name
        for target in _dashboard_targets(dashboard)
        if "expr" in target
        for name in NAME.findall(target["expr"])
    }
    assert used_by_rules, "no metric found in the rules"
    assert used_by_dashboard, "no metric found in the dashboard"
    assert used_by_rules - exported == set()
    assert used_by_dashboard - exported == set()
    # And the service's own families all appear in the dashboard.
    for family in (
        "defectops_http_requests_total",
        "defectops_http_request_duration_seconds_bucket",
        "defectops_prediction_score_bucket",
        "defectops_predictions_total",
        "defectops_model_info",
        "defectops_feature_drift_score",
        "defectops_model_reloads_total",
    ):
        assert family in used_by_dashboard, family


def test_the_dashboard_is_a_provisionable_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "defectops-service"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "defectops.yml").read_text()
    )
    uids = {source["uid"] for source in datasources["datasources"]}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] in uids, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids
    titles = " | ".join(panel["title"] for panel in dashboard["panels"])
    for wanted in (
        "Requests",
        "Latency quantiles",
        "Score distribution",
        "Feature drift",
        "Champion version",
        "Heal decisions",
    ):
        assert wanted in titles, wanted
    heal = next(p for p in dashboard["panels"] if p["title"].startswith("Heal decisions"))
    assert "FROM heal_events" in heal["targets"][0]["rawSql"]
    providers = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "defectops.yml").read_text()
    )
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
