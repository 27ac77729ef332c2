"""POST /v1/predict through the real app: answers equal the shared scoring, every answer is logged, bad input is
refused with a reason (one test per status code)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from defectops.data.schemas import FEATURES
from defectops.predlog import PredictionLog
from defectops.training.risk import score
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import Deployed, MakeClient, Session, record_of


def _log(tmp_path: Path) -> PredictionLog:
    return PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}")


def test_single_record_matches_the_shared_scoring_and_is_logged(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    client = make_client(deployed.name)
    record = record_of(api_session.reference, 7)
    sha = "ab" * 20
    response = client.post(
        "/v1/predict", json={"records": [{**record, "repo": "acme/app", "commit_sha": sha}]}
    )

    assert response.status_code == 200, response.text
    [answer] = response.json()["predictions"]
    model = api_session.model_a
    # The reference answer: defectops.training.risk.score on a one-row DataFrame (pandas path of the CLI).
    expected = score(
        model,
        pd.DataFrame([record]),
        model_name=deployed.name,
        model_version="1",
        threshold=model.threshold_,
        bands=model.risk_bands(),
        top_k=5,
    )[0]
    assert answer["probability"] == pytest.approx(expected.probability, abs=1e-12)
    assert answer["probability"] == pytest.approx(float(model.predict_proba(pd.DataFrame([record]))[0, 1]))
    assert answer["risk"] is expected.risk
    assert answer["risk_band"] == expected.band.value
    assert answer["threshold"] == pytest.approx(model.threshold_)
    assert (answer["model_name"], answer["model_version"]) == (deployed.name, "1")
    assert [r["feature"] for r in answer["reasons"]] == [r.feature for r in expected.reasons]
    for got, want in zip(answer["reasons"], expected.reasons, strict=True):
        assert got["value"] == want.value
        assert got["contribution"] == pytest.approx(want.contribution, abs=1e-12)
        assert got["direction"] == want.direction
    assert (answer["repo"], answer["commit_sha"]) == ("acme/app", sha)

    with _log(tmp_path) as log:
        stored = log.get(answer["prediction_id"])
    assert stored.served is True
    assert stored.score == answer["probability"]
    assert stored.model_version == "1"
    assert stored.inputs == record
    assert (stored.repo, stored.commit_sha) == ("acme/app", sha)
    assert stored.risk_band == answer["risk_band"]


def test_batch_answers_in_order_with_unique_ids_all_logged(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    client = make_client(deployed.name)
    rows = list(range(100, 250))  # 150 records: above the inline limit, so scored on a worker thread
    records = [record_of(api_session.reference, i) for i in rows]
    response = client.post("/v1/predict", json={"records": records, "top_k": 2})

    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    expected = api_session.model_a.predict_proba(api_session.reference.iloc[rows][list(FEATURES)])[:, 1]
    assert [a["probability"] for a in answers] == pytest.approx(expected.tolist(), abs=1e-12)
    assert all(len(a["reasons"]) == 2 for a in answers)
    ids = [a["prediction_id"] for a in answers]
    assert len(set(ids)) == 150
    with _log(tmp_path) as log:
        counts = log.counts()
        assert {log.get(i).prediction_id for i in ids} == set(ids)
    assert (counts.predictions, counts.served, counts.shadow) == (150, 150, 0)


def test_top_k_zero_returns_no_reasons(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    response = client.post("/v1/predict", json={"records": [record_of(api_session.reference, 3)], "top_k": 0})
    assert response.status_code == 200
    [answer] = response.json()["predictions"]
    assert answer["reasons"] == []
    expected = api_session.model_a.predict_proba(api_session.reference.iloc[[3]][list(FEATURES)])[0, 1]
    assert answer["probability"] == pytest.approx(float(expected), abs=1e-12)


def test_more_records_than_the_limit_is_413(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name, max_batch=3)
    records = [record_of(api_session.reference, i) for i in range(4)]
    response = client.post("/v1/predict", json={"records": records})
    assert response.status_code == 413
    assert "4 records" in response.json()["detail"]
    assert "limit is 3" in response.json()["detail"]


def test_body_above_the_size_limit_is_413_before_parsing(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name, max_body_bytes=2048)
    records = [record_of(api_session.reference, i) for i in range(20)]  # about 5 KB of JSON
    response = client.post("/v1/predict", json={"records": records})
    assert response.status_code == 413
    assert "exceeds the limit of 2048" in response.json()["detail"]


def test_body_above_the_size_limit_without_content_length_is_413(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    import json

    client = make_client(deployed.name, max_body_bytes=2048)
    body = json.dumps({"records": [record_of(api_session.reference, i) for i in range(20)]}).encode()

    def chunks():  # a generator body is sent with chunked transfer encoding: no Content-Length
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    response = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "exceeds the limit of 2048" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "location", "kind"),
    [
        ({"lines_added": 3.0}, ["body", "records", "0", "lines_added"], "extra_forbidden"),
        ({"la": "12"}, ["body", "records", "0", "la"], "float_type"),
        ({"la": True}, ["body", "records", "0", "la"], "float_type"),
        ({"la": -1.0}, ["body", "records", "0", "la"], "greater_than_equal"),
    ],
    ids=["unknown-field", "string-number", "bool-number", "negative"],
)
def test_bad_record_is_422_naming_the_field(
    deployed: Deployed,
    make_client: MakeClient,
    api_session: Session,
    change: dict[str, object],
    location: list[str],
    kind: str,
) -> None:
    client = make_client(deployed.name)
    response = client.post(
        "/v1/predict", json={"records": [{**record_of(api_session.reference, 0), **change}]}
    )
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [e["loc"] for e in errors] == [location]
    assert errors[0]["type"] == kind


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_422(
    deployed: Deployed, make_client: MakeClient, api_session: Session, value: str
) -> None:
    client = make_client(deployed.name)
    record = record_of(api_session.reference, 0)
    body = '{"records": [{' + ", ".join(f'"{k}": {v!r}' for k, v in record.items() if k != "la")
    body += f', "la": {value}' + "}]}"
    response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "records", "0", "la"]
    assert error["type"] == "finite_number"


def test_missing_feature_is_422_with_the_model_inputs(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    record = record_of(api_session.reference, 0)
    del record["exp"]
    del record["la"]
    response = client.post("/v1/predict", json={"records": [record_of(api_session.reference, 1), record]})
    assert response.status_code == 422
    [problem] = response.json()["detail"]  # a list of problems, as the OpenAPI's 422 says
    assert problem["msg"].startswith("records[1]: missing 2 of the ")
    assert problem["msg"].endswith("(GET /v1/models lists them): 'la', 'exp'")


def test_many_missing_features_are_all_named_with_the_model(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    """A record with one metric: the 422 was cut at 200 characters in the middle of the model's input list
    ("..., 'build_share', ne" on a 27-input champion), so the model and part of what was missing were lost."""
    client = make_client(deployed.name)
    features = client.get("/v1/models").json()["champion"]["features"]
    response = client.post("/v1/predict", json={"records": [{"la": 3.0}]})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    missing = [f for f in features if f != "la"]
    assert problem["msg"] == (
        f"records[0]: missing {len(missing)} of the {len(features)} inputs of {deployed.name} v1 "
        f"(GET /v1/models lists them): {', '.join(repr(f) for f in missing)}"
    )


def test_sha_without_repo_and_empty_batch_are_422(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    response = client.post("/v1/predict", json={"records": [{"la": 1.0, "commit_sha": "a" * 40}]})
    assert response.status_code == 422
    assert "commit_sha needs repo" in response.json()["detail"][0]["msg"]
    assert client.post("/v1/predict", json={"records": []}).status_code == 422
    assert (
        client.post(
            "/v1/predict", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_no_champion_is_503_and_not_ready(
    registry: object, make_client: MakeClient, request: pytest.FixtureRequest
) -> None:
    client = make_client("never-registered-" + request.node.name[:40])
    response = client.post("/v1/predict", json={"records": [{"la": 1.0}]})
    assert response.status_code == 503
    assert "no model is loaded" in response.json()["detail"]
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not ready"
    assert client.get("/health/live").status_code == 200


def test_probability_is_a_finite_number_in_every_answer(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    # Extreme but valid inputs (zeros and very large counts) still give finite probabilities.
    records = [
        dict.fromkeys(FEATURES, 0.0),
        {name: 1e9 for name in FEATURES if name != "fix"} | {"fix": 1.0},
    ]
    answers = client.post("/v1/predict", json={"records": records}).json()["predictions"]
    assert all(math.isfinite(a["probability"]) and 0.0 <= a["probability"] <= 1.0 for a in answers)
