"""Health probes, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import Deployed, MakeClient, Session, admin, record_of


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_live_and_ready(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    assert client.get("/health/live").json() == {
        "status": "live",
        "detail": None,
        "degraded": False,
        "model_name": None,
        "model_version": None,
    }
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "detail": None,
        "degraded": False,
        "model_name": deployed.name,
        "model_version": 1,
    }


def test_metrics_count_requests_predictions_and_scores(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    records = [record_of(api_session.reference, i) for i in range(30)]
    answers = client.post("/v1/predict", json={"records": records[:20]}).json()["predictions"]
    answers += client.post("/v1/predict", json={"records": records[20:]}).json()["predictions"]
    assert client.post("/v1/predict", json={"records": [{"bogus": 1}]}).status_code == 422
    assert client.post("/v1/models/reload").status_code == 401
    assert client.get("/no/such/page").status_code == 404

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)

    def requests(route: str, status: str, method: str = "POST") -> float:
        key = ("defectops_http_requests_total", (("method", method), ("route", route), ("status", status)))
        return samples.get(key, 0.0)

    assert requests("/v1/predict", "200") == 2
    assert requests("/v1/predict", "422") == 1
    assert requests("/v1/models/reload", "401") == 1
    assert requests("unmatched", "404", "GET") == 1
    latency_count = (
        "defectops_http_request_duration_seconds_count",
        (("method", "POST"), ("route", "/v1/predict")),
    )
    assert samples[latency_count] == 3

    bands = Counter(a["risk_band"] for a in answers)
    for band, count in bands.items():
        key = (
            "defectops_predictions_total",
            (("model_name", deployed.name), ("model_version", "1"), ("risk_band", band), ("served", "true")),
        )
        assert samples[key] == count
    score_labels = (("model_name", deployed.name), ("model_version", "1"), ("served", "true"))
    assert samples[("defectops_prediction_score_count", score_labels)] == 30
    assert samples[("defectops_prediction_score_sum", score_labels)] == pytest.approx(
        sum(a["probability"] for a in answers)
    )
    # Buckets are cumulative: the 0.5 bucket holds every probability at or below 0.5.
    below_half = sum(a["probability"] <= 0.5 for a in answers)
    assert samples[("defectops_prediction_score_bucket", (("le", "0.5"), *score_labels))] == below_half
    assert samples[("defectops_prediction_log_commit_rows_sum", ())] == 30
    info = (("model_name", deployed.name), ("model_version", "1"), ("role", "champion"))
    assert samples[("defectops_model_info", info)] == 1
    challenger = (("model_name", deployed.name), ("model_version", "2"), ("role", "challenger"))
    assert samples[("defectops_model_info", challenger)] == 1


def test_metrics_follow_a_promotion(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    assert (
        client.post("/v1/models/promote", json={"version": 2, "why": "t"}, headers=admin()).status_code == 200
    )
    samples = _samples(client.get("/metrics").text)
    models = {labels for name, labels in samples if name == "defectops_model_info"}
    assert models == {(("model_name", deployed.name), ("model_version", "2"), ("role", "champion"))}


def test_openapi_documents_every_route(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    document = client.get("/openapi.json").json()
    assert set(document["paths"]) == {
        "/v1/predict",
        "/v1/commits/score",
        "/v1/feedback",
        "/v1/models",
        "/v1/models/reload",
        "/v1/models/promote",
        "/v1/models/rollback",
        "/v1/traffic",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/v1/reviews",
        "/ui/api/overview",
        "/ui/api/commits",
        "/ui/api/commits/{prediction_id}",
        "/ui/api/monitoring",
        "/ui/api/heal",
        "/ui/api/models/{version}",
    }
    predict = document["paths"]["/v1/predict"]["post"]
    assert predict["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictResponse"
    }
    assert {"413", "422", "503"} <= set(predict["responses"])
    assert document["paths"]["/v1/models/reload"]["post"]["security"] == [{"AdminToken": []}]
    assert predict["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictRequest"
    }
    assert "ChangeRecord" in document["components"]["schemas"]


def test_openapi_marks_a_role_open_while_its_token_is_unset(
    deployed: Deployed, make_client: MakeClient
) -> None:
    """Scoring and the UI's reads take no token until one is configured; the document says so per operation
    (an empty requirement is OpenAPI's "or none"), so clients and fuzzers know which calls must be refused."""
    open_doc = make_client(deployed.name).get("/openapi.json").json()["paths"]
    assert open_doc["/v1/predict"]["post"]["security"] == [{}, {"PredictToken": []}]
    assert open_doc["/ui/api/overview"]["get"]["security"] == [{}, {"ReadToken": []}]
    assert open_doc["/v1/reviews"]["post"]["security"] == [{}, {"ReadToken": []}]
    assert open_doc["/v1/feedback"]["post"]["security"] == [{"FeedbackToken": []}]
    token = "r" * 32
    closed = make_client(deployed.name, read_token=token, predict_token=token[::-1] + "p")
    closed_doc = closed.get("/openapi.json").json()["paths"]
    assert closed_doc["/v1/predict"]["post"]["security"] == [{"PredictToken": []}]
    assert closed_doc["/ui/api/overview"]["get"]["security"] == [{"ReadToken": []}]


def test_405_allows_every_method_of_the_path(deployed: Deployed, make_client: MakeClient) -> None:
    """``/v1/reviews`` has a GET route and a POST route: a 405 names both, not only the first route's."""
    answer = make_client(deployed.name).delete("/v1/reviews")
    assert answer.status_code == 405
    assert {"GET", "POST"} <= {method.strip() for method in answer.headers["allow"].split(",")}


def test_docs_page_loads_every_file_from_the_service(deployed: Deployed, make_client: MakeClient) -> None:
    """/docs works offline: Swagger UI's script, style and icon come from the service, not from a CDN."""
    import re

    client = make_client(deployed.name)
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert sources, page.text
    assert all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    assert "cdn." not in page.text
    assert "https://" not in page.text.replace("https://swagger.io", "")
    for source in sources:
        answer = client.get(source)
        assert answer.status_code == 200, source
        assert len(answer.content) > 500, source
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in script.text
    assert "javascript" in script.headers["content-type"]
    assert client.get("/redoc").status_code == 404  # no ReDoc: nothing ships its files


def test_observe_many_equals_observing_each_value() -> None:
    import math

    from prometheus_client import CollectorRegistry, Histogram

    from defectops.serving.metrics import SCORE_BUCKETS, observe_many

    values = [0.0, 0.05, 0.1, 0.1000001, 0.5, 0.99, 1.0, *(i / 997 for i in range(997))]
    samples = []
    for bulk in (False, True):
        registry = CollectorRegistry()
        histogram = Histogram("h", "h", ["m"], buckets=SCORE_BUCKETS, registry=registry)
        child = histogram.labels("x")
        if bulk:
            observe_many(child, values[:3])
            observe_many(child, values[3:])
            observe_many(child, [])
        else:
            for value in values:
                child.observe(value)
        samples.append(
            {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for s in next(iter(registry.collect())).samples
            }
        )
    each, bulk_samples = samples
    assert each.keys() == bulk_samples.keys()
    for key, value in each.items():
        if key[0] == "h_sum":
            assert math.isclose(bulk_samples[key], value, rel_tol=1e-12)
        elif key[0] != "h_created":
            assert bulk_samples[key] == value, key


def test_a_token_in_the_url_is_refused_on_every_path(deployed: Deployed, make_client: MakeClient) -> None:
    # Found on flask: GET /v1/models?token=... answered 200 (only routes that authenticate refused it), as did
    # /metrics, the health checks and the UI, so a token pasted into a URL seemed to work while the URL went to
    # access logs, history and proxies. docs/serving.md: 400 "whatever it carries".
    client = make_client(deployed.name)
    for path in ("/v1/models", "/metrics", "/health/ready", "/health/live", "/ui/", "/openapi.json"):
        for parameter in ("token", "API_KEY", "access_token"):
            answer = client.get(f"{path}?{parameter}=abc123")
            assert answer.status_code == 400, (path, parameter, answer.status_code)
            assert answer.json() == {
                "detail": "tokens in the URL are refused; send 'Authorization: Bearer <token>'"
            }
    assert client.get("/v1/models?verbose=1").status_code == 200  # other parameters are not tokens
    assert client.get("/ui/api/commits?days=7&limit=5").status_code == 200
    refused = client.post("/v1/predict?key=x", json={"records": [record_of(deployed.session.reference, 0)]})
    assert refused.status_code == 400
