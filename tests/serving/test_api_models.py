"""/v1/models and the admin endpoints: authentication, atomic reload, promote, rollback, canary and shadow."""

from __future__ import annotations

from pathlib import Path

import pytest

from defectops.data.schemas import FEATURES
from defectops.predlog import PredictionLog
from defectops.registry.records import CHAMPION
from defectops.registry.registry import ModelRegistry
from defectops.serving.deployment import route_fraction
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import (
    ADMIN_TOKEN,
    NOW,
    Deployed,
    MakeClient,
    Session,
    admin,
    record_of,
    unique_name,
)

ADMIN_ROUTES = [
    ("post", "/v1/models/reload", None),
    ("post", "/v1/models/promote", {"version": 2, "why": "test"}),
    ("post", "/v1/models/rollback", {"why": "test"}),
    ("put", "/v1/traffic", {"mode": "canary", "share": 0.5}),
]


def _versions(client) -> tuple[int | None, int | None]:
    body = client.get("/v1/models").json()
    return (
        body["champion"]["version"] if body["champion"] else None,
        body["challenger"]["version"] if body["challenger"] else None,
    )


def _predict(client, session: Session, rows: range) -> list[dict]:
    records = [record_of(session.reference, i) for i in rows]
    response = client.post("/v1/predict", json={"records": records, "top_k": 1})
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_models_lists_champion_challenger_and_traffic(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    response = client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    model = api_session.model_a
    assert body["name"] == deployed.name
    assert body["ready"] is True
    assert body["champion"]["version"] == 1
    assert body["champion"]["features"] == list(FEATURES)
    assert body["champion"]["scorer"] == "booster"
    assert body["champion"]["threshold"] == pytest.approx(model.threshold_)
    # Bands from the training base rate: low from about half, medium from once, high from about twice it.
    bands = body["champion"]["risk_bands"]
    assert bands["base_rate"] == pytest.approx(model.positive_rate_)
    assert bands["low"] == pytest.approx(model.risk_bands().low)
    assert bands["low_derived"] is False
    assert bands["medium"] == pytest.approx(model.positive_rate_)
    assert bands["high"] == pytest.approx(model.risk_bands().high)
    assert bands["support"] == [s.as_dict() for s in model.risk_bands().support]
    assert body["challenger"]["version"] == 2
    assert body["traffic"] == {"mode": "off", "share": 0.0}
    assert body["last_error"] is None


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=[r[1] for r in ADMIN_ROUTES])
def test_admin_without_token_is_401(
    deployed: Deployed, make_client: MakeClient, method: str, path: str, body: dict | None
) -> None:
    client = make_client(deployed.name)
    response = client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    response = client.request(method, path, json=body, headers={"Authorization": f"Basic {ADMIN_TOKEN}"})
    assert response.status_code == 401
    assert _versions(client) == (1, 2)


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=[r[1] for r in ADMIN_ROUTES])
def test_admin_with_wrong_token_is_403(
    deployed: Deployed, make_client: MakeClient, method: str, path: str, body: dict | None
) -> None:
    client = make_client(deployed.name)
    for token in (ADMIN_TOKEN[:-1], ADMIN_TOKEN + "x", "x" * len(ADMIN_TOKEN)):
        response = client.request(method, path, json=body, headers=admin(token))
        assert response.status_code == 403
        assert response.json() == {
            "detail": "invalid admin token: send the value of DEFECTOPS_SERVE_ADMIN_TOKEN this service was "
            "started with"
        }
    assert _versions(client) == (1, 2)
    assert deployed.registry.alias_version(deployed.name, CHAMPION) == 1


def test_reload_picks_up_an_alias_moved_elsewhere(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    deployed.registry.promote(deployed.name, 2, "cli-user", "moved by the CLI", now=NOW)
    assert _versions(client) == (1, 2)  # nothing changes until the service is told

    response = client.post("/v1/models/reload", headers=admin())
    assert response.status_code == 200
    assert response.json()["champion"]["version"] == 2
    assert response.json()["challenger"] is None  # v2 stopped being the challenger when it was promoted
    answers = _predict(client, api_session, range(5))
    assert {a["model_version"] for a in answers} == {"2"}
    expected = api_session.model_b.predict_proba(api_session.reference.iloc[0:5][list(FEATURES)])[:, 1]
    assert [a["probability"] for a in answers] == pytest.approx(expected.tolist(), abs=1e-12)


def test_reload_of_a_broken_artifact_is_refused_and_the_old_model_keeps_serving(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    broken = deployed.register(api_session.broken)  # v3
    # defectops refuses to make it champion; someone moves the alias outside defectops (the MLflow UI).
    from defectops.registry.tracking import activate

    activate(api_session.config).set_registered_model_alias(deployed.name, CHAMPION, str(broken))
    response = client.post("/v1/models/reload", headers=admin())
    assert response.status_code == 409
    assert f"v{broken} is refused" in response.json()["detail"]
    assert "retry-after" not in response.headers  # a broken version stays broken: retrying will not help

    body = client.get("/v1/models").json()
    assert body["champion"]["version"] == 1
    assert f"v{broken}" in body["last_error"]
    assert client.get("/health/ready").status_code == 200
    answers = _predict(client, api_session, range(3))
    assert {a["model_version"] for a in answers} == {"1"}


def test_promote_through_the_api_moves_the_alias_and_serves_it(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    response = client.post(
        "/v1/models/promote",
        json={"version": 2, "why": "better on the last window", "who": "ops"},
        headers=admin(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["champion"]["version"] == 2
    assert deployed.registry.alias_version(deployed.name, CHAMPION) == 2
    [event] = [e for e in deployed.registry.history(deployed.name, alias=CHAMPION) if e.to_version == 2]
    assert (event.action, event.who, event.why) == ("promote", "ops", "better on the last window")
    assert {a["model_version"] for a in _predict(client, api_session, range(3))} == {"2"}


def test_promote_of_a_broken_version_is_refused_before_the_alias_moves(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    broken = deployed.register(api_session.broken)
    response = client.post("/v1/models/promote", json={"version": broken, "why": "test"}, headers=admin())
    assert response.status_code == 409
    assert deployed.registry.alias_version(deployed.name, CHAMPION) == 1
    assert _versions(client)[0] == 1


def test_promote_of_an_archived_version_without_force_is_409(
    deployed: Deployed, make_client: MakeClient
) -> None:
    """Found by schemathesis in the probe suite: the gate's refusal was a 503 (as if no model existed)."""
    client = make_client(deployed.name)
    deployed.registry.archive(deployed.name, 2, "gate", "gate roc_auc below the floor", now=NOW)
    response = client.post("/v1/models/promote", json={"version": 2, "why": "test"}, headers=admin())
    assert response.status_code == 409
    assert "promote with force" in response.json()["detail"]
    assert deployed.registry.alias_version(deployed.name, CHAMPION) == 1


def test_promote_of_an_unknown_version_is_404(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    response = client.post("/v1/models/promote", json={"version": 99, "why": "test"}, headers=admin())
    assert response.status_code == 404
    assert "has no version 99" in response.json()["detail"]


def test_promote_with_a_bad_body_is_422(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    for body in (
        {"version": 2},
        {"version": "2", "why": "x"},
        {"version": 0, "why": "x"},
        {"version": 2, "why": "x", "x": 1},
    ):
        assert client.post("/v1/models/promote", json=body, headers=admin()).status_code == 422


def test_rollback_restores_the_previous_champion(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    assert (
        client.post("/v1/models/promote", json={"version": 2, "why": "up"}, headers=admin()).status_code
        == 200
    )
    response = client.post("/v1/models/rollback", json={"why": "worse in production"}, headers=admin())
    assert response.status_code == 200, response.text
    assert response.json()["champion"]["version"] == 1
    assert deployed.registry.alias_version(deployed.name, CHAMPION) == 1
    assert {a["model_version"] for a in _predict(client, api_session, range(3))} == {"1"}


def test_rollback_without_an_earlier_champion_is_refused(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    response = client.post("/v1/models/rollback", json={"why": "test"}, headers=admin())
    assert response.status_code == 409  # a conflict with the registry's state, not a server error (#14)
    assert "no earlier champion" in response.json()["detail"]
    assert _versions(client) == (1, 2)


def test_canary_routes_by_the_hash_of_the_prediction_id(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    client = make_client(deployed.name)
    response = client.put("/v1/traffic", json={"mode": "canary", "share": 0.5}, headers=admin())
    assert response.status_code == 200
    assert response.json()["traffic"] == {"mode": "canary", "share": 0.5}

    answers = _predict(client, api_session, range(200))
    for answer in answers:
        expected = "2" if route_fraction(answer["prediction_id"]) < 0.5 else "1"
        assert answer["model_version"] == expected
    by_version = {v: sum(a["model_version"] == v for a in answers) for v in ("1", "2")}
    assert by_version["1"] > 0
    assert by_version["2"] > 0
    frame = api_session.reference.iloc[0:200][list(FEATURES)]
    p_a = api_session.model_a.predict_proba(frame)[:, 1]
    p_b = api_session.model_b.predict_proba(frame)[:, 1]
    for i, answer in enumerate(answers):
        assert answer["probability"] == pytest.approx(
            float(p_b[i] if answer["model_version"] == "2" else p_a[i])
        )
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        counts = log.counts()
    assert (counts.served, counts.shadow) == (200, 0)
    assert counts.by_model_version == by_version


def test_shadow_scores_the_challenger_logs_it_and_returns_only_the_champion(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    client = make_client(deployed.name)
    assert (
        client.put("/v1/traffic", json={"mode": "shadow", "share": 1.0}, headers=admin()).status_code == 200
    )
    answers = _predict(client, api_session, range(10))
    assert {a["model_version"] for a in answers} == {"1"}

    frame = api_session.reference.iloc[0:10][list(FEATURES)]
    p_b = api_session.model_b.predict_proba(frame)[:, 1]
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        counts = log.counts()
        window = log.window(NOW.replace(year=2000), NOW.replace(year=2100))
    assert (counts.served, counts.shadow) == (10, 10)
    shadows = window[~window["served"]].set_index("shadow_of")
    for i, answer in enumerate(answers):
        shadow = shadows.loc[answer["prediction_id"]]
        assert shadow["model_version"] == "2"
        assert shadow["score"] == pytest.approx(float(p_b[i]))


def test_traffic_without_a_challenger_is_409(
    deployed: Deployed, make_client: MakeClient, api_session: Session, request: pytest.FixtureRequest
) -> None:
    deployed.registry.promote(deployed.name, 2, "test", "test", now=NOW)  # no challenger left
    client = make_client(deployed.name)
    response = client.put("/v1/traffic", json={"mode": "shadow", "share": 0.2}, headers=admin())
    assert response.status_code == 409
    assert "needs a challenger" in response.json()["detail"]
    assert client.get("/v1/models").json()["traffic"]["mode"] == "off"


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "off", "share": 0.3},
        {"mode": "canary", "share": 0},
        {"mode": "canary", "share": 1.5},
        {"mode": "blue"},
        {"mode": "canary", "share": 0.1, "seed": 1},
    ],
)
def test_bad_traffic_is_422(deployed: Deployed, make_client: MakeClient, body: dict) -> None:
    client = make_client(deployed.name)
    assert client.put("/v1/traffic", json=body, headers=admin()).status_code == 422


def test_another_worker_follows_admin_changes_through_the_control_file(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    worker_a = make_client(deployed.name)
    worker_b = make_client(deployed.name)  # same workspace and model: a second worker of the same service
    assert (
        worker_a.put("/v1/traffic", json={"mode": "canary", "share": 0.25}, headers=admin()).status_code
        == 200
    )
    assert (
        worker_a.post("/v1/models/promote", json={"version": 2, "why": "t"}, headers=admin()).status_code
        == 200
    )

    manager_b = worker_b.app.state.service.manager
    assert _versions(worker_b) == (1, 2)
    assert manager_b.poll_once() is True
    a, b = worker_a.get("/v1/models").json(), worker_b.get("/v1/models").json()
    assert _versions(worker_b) == (2, None)
    # Two changes were published (traffic, then promote); the promotion left no challenger, so no canary.
    assert b["generation"] == a["generation"] == 2
    assert b["traffic"] == a["traffic"] == {"mode": "off", "share": 0.0}
    assert manager_b.poll_once() is False  # nothing new
    assert {a["model_version"] for a in _predict(worker_b, api_session, range(4))} == {"2"}


def test_reload_without_a_champion_is_404_and_a_later_reload_makes_the_service_ready(
    registry: ModelRegistry, make_client: MakeClient, api_session: Session, request: pytest.FixtureRequest
) -> None:
    target = Deployed(unique_name(request), registry, api_session)
    client = make_client(target.name)
    response = client.post("/v1/models/reload", headers=admin())
    assert response.status_code == 404
    assert response.json()["detail"] == f"unknown model {target.name!r}"
    assert client.get("/health/ready").status_code == 503

    target.register(api_session.good_b)  # registered, but nothing is the champion yet
    response = client.post("/v1/models/reload", headers=admin())
    assert response.status_code == 404
    assert response.json()["detail"] == f"model {target.name!r} has no 'champion' alias"

    target.registry.promote(target.name, 1, "test", "test", now=NOW)
    response = client.post("/v1/models/reload", headers=admin())
    assert response.status_code == 200
    assert response.json()["ready"] is True
    assert client.get("/health/ready").status_code == 200
    assert {a["model_version"] for a in _predict(client, api_session, range(2))} == {"1"}


def test_the_contract_of_issue_14(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    document = client.get("/openapi.json").json()
    assert "503" in document["paths"]["/v1/models/rollback"]["post"]["responses"]
    # Promoting the champion again is a valid request in a conflicting state: 409 with the reason (schemathesis
    # counted the 422 it used to be as a schema-valid request rejected).
    again = client.post("/v1/models/promote", json={"version": 1, "why": "again"}, headers=admin())
    assert again.status_code == 409
    assert "already the champion" in again.json()["detail"]
    # A refusal decided by the service with 422 has the schema's shape: a list of problems.
    bad = client.post(
        "/v1/models/promote", json={"version": 99, "why": "x", "who": "\u0000"}, headers=admin()
    )
    assert bad.status_code == 422
    assert isinstance(bad.json()["detail"], list)
    for share in (False, "0.5"):
        refused = client.put("/v1/traffic", json={"mode": "canary", "share": share}, headers=admin())
        assert refused.status_code == 422, share
