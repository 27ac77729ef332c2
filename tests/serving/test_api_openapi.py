"""The OpenAPI document says what the service does (issue #14): the metrics the served model needs are
required (no generated request used to reach scoring, since every metric was optional and a missing one is
a 422 at scoring time)."""

from __future__ import annotations

from defectops.data.schemas import FEATURES
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import Deployed, MakeClient, Session, record_of


def _change_record(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()["components"]["schemas"]["ChangeRecord"]


def test_the_metrics_of_the_served_model_are_required_non_null_numbers(
    deployed: Deployed, make_client: MakeClient
) -> None:
    client = make_client(deployed.name)
    features = client.get("/v1/models").json()["champion"]["features"]
    assert features == list(FEATURES)
    record = _change_record(client)
    assert record["required"] == features
    for name in features:
        field = record["properties"][name]
        assert {"type": "null"} not in field.get("anyOf", [])
        assert "default" not in field
    assert record["properties"]["la"]["type"] == "number"
    assert record["properties"]["la"]["minimum"] == 0
    assert {c.get("type") for c in record["properties"]["fix"]["anyOf"]} == {"boolean", "number"}
    # what is not a model input stays optional
    assert record["properties"]["repo"]["anyOf"][-1] == {"type": "null"}
    assert "churn" not in record["required"]


def test_the_required_metrics_are_what_scoring_refuses_without(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    required = _change_record(client)["required"]
    complete = record_of(api_session.reference, 0)
    assert client.post("/v1/predict", json={"records": [complete]}).status_code == 200
    for name in required:
        partial = {k: v for k, v in complete.items() if k != name}
        response = client.post("/v1/predict", json={"records": [partial]})
        assert response.status_code == 422, name
        assert name in response.text


def test_without_a_served_model_no_metric_is_required(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name + "-none")
    assert client.get("/health/ready").status_code == 503
    assert "required" not in _change_record(client)
