"""POST /v1/feedback: by prediction id or by commit, idempotent (201 written, 200 already there), 404, 422;
only with the feedback (or admin) token, recorded with its writer, never over a label from SZZ mining."""

from __future__ import annotations

from pathlib import Path

from defectops.config import LOCAL_ADMIN_TOKEN
from defectops.predlog import PredictionLog
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import NOW, Deployed, MakeClient, Session, admin, record_of

SHA = "c0ffee" + "0" * 34
LATER = "1a7e" + "0" * 36
FEEDBACK_TOKEN = "feedback-9d3b7e1f2a6c4d8e0b5a"
WRITER = admin(FEEDBACK_TOKEN)


def _one_prediction(client, session: Session, **ids: str) -> str:
    response = client.post("/v1/predict", json={"records": [{**record_of(session.reference, 0), **ids}]})
    assert response.status_code == 200
    return str(response.json()["predictions"][0]["prediction_id"])


def test_feedback_by_id_is_201_then_200_when_repeated_then_201_when_changed(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    client = make_client(deployed.name, feedback_token=FEEDBACK_TOKEN)
    prediction_id = _one_prediction(client, api_session)

    first = client.post("/v1/feedback", json={"prediction_id": prediction_id, "label": 1}, headers=WRITER)
    assert first.status_code == 201
    assert first.json() | {"feedback_id": 0} == {
        "feedback_id": 0,
        "status": "recorded",
        "replaced_feedback_id": None,
        "matched_predictions": 1,
        "pending": False,
    }
    again = client.post("/v1/feedback", json={"prediction_id": prediction_id, "label": 1}, headers=WRITER)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["feedback_id"] == first.json()["feedback_id"]
    changed = client.post("/v1/feedback", json={"prediction_id": prediction_id, "label": 0}, headers=admin())
    assert changed.status_code == 201
    assert changed.json()["status"] == "replaced"
    assert changed.json()["replaced_feedback_id"] == first.json()["feedback_id"]

    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        history = log.feedback_history(prediction_id=prediction_id)
        joined = log.joined(NOW.replace(year=2000), NOW.replace(year=2100))
    assert [(h.label, h.source, h.superseded_at is None) for h in history] == [
        (1, "api:feedback", False),
        (0, "api:admin", True),
    ]
    assert joined["label"].tolist() == [0]


def test_feedback_by_commit_labels_its_predictions(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    client = make_client(deployed.name)
    _one_prediction(client, api_session, repo="acme/app", commit_sha=SHA)
    _one_prediction(client, api_session, repo="acme/app", commit_sha=SHA)
    response = client.post(
        "/v1/feedback",
        headers=admin(),
        json={
            "repo": "acme/app",
            "commit_sha": SHA.upper(),
            "label": 1,
            "label_time": "2026-11-20T10:00:00Z",
        },
    )
    assert response.status_code == 201
    assert response.json()["matched_predictions"] == 2
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        joined = log.joined(NOW.replace(year=2000), NOW.replace(year=2100))
    assert joined["label"].tolist() == [1, 1]


def test_feedback_for_a_commit_not_scored_yet_is_kept_pending_and_labels_it_once_scored(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    """Labels arrive late, but a fix can name a commit the service never scored: the answer said 201 with 0
    matched predictions and nothing about what became of the label. It is kept, and says so."""
    client = make_client(deployed.name)
    label = {"repo": "acme/app", "commit_sha": LATER, "label": 1}
    early = client.post("/v1/feedback", headers=admin(), json=label)
    assert early.status_code == 201
    assert early.json() | {"feedback_id": 0} == {
        "feedback_id": 0,
        "status": "recorded",
        "replaced_feedback_id": None,
        "matched_predictions": 0,
        "pending": True,
    }
    again = client.post("/v1/feedback", headers=admin(), json=label)
    assert (again.status_code, again.json()["pending"]) == (200, True)

    _one_prediction(client, api_session, repo="acme/app", commit_sha=LATER)
    _one_prediction(client, api_session, repo="other/app", commit_sha=LATER)  # another repository's commit
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        window = log.window(NOW.replace(year=2000), NOW.replace(year=2100))  # what monitoring and heal read
    labels = dict(zip(window["repo"], window["label"].astype("float64").fillna(-1), strict=True))
    assert labels == {"acme/app": 1, "other/app": -1}  # the label's commit only, not the same sha elsewhere
    matched = client.post("/v1/feedback", headers=admin(), json=label)
    assert matched.status_code == 200
    assert (matched.json()["matched_predictions"], matched.json()["pending"]) == (1, False)
    assert matched.json()["feedback_id"] == early.json()["feedback_id"]


def test_feedback_for_an_unknown_prediction_id_is_404(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    unknown = "8a5d0c42-5d9a-4f55-9a53-6f1c0c3c9b11"
    response = client.post("/v1/feedback", json={"prediction_id": unknown, "label": 1}, headers=admin())
    assert response.status_code == 404
    assert unknown in response.json()["detail"]


def test_bad_feedback_is_422(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    bad = [
        {"label": 1},  # no target
        {"prediction_id": "not-a-uuid", "label": 1},
        {"prediction_id": "8a5d0c42-5d9a-4f55-9a53-6f1c0c3c9b11", "label": 2},
        {"repo": "acme/app", "label": 1},  # commit target without sha
        {"repo": "acme/app", "commit_sha": "abc", "label": 1},
        {"prediction_id": "8a5d0c42-5d9a-4f55-9a53-6f1c0c3c9b11", "label": 1, "note": "x"},
        {"repo": "acme/app", "commit_sha": SHA, "label": 1, "label_time": "2026-11-20T10:00:00"},  # naive
        {"prediction_id": "8a5d0c42-5d9a-4f55-9a53-6f1c0c3c9b11", "label": 1, "source": "szz"},  # issue #14
        {"prediction_id": "8a5d0c42-5d9a-4f55-9a53-6f1c0c3c9b11", "label": True},
        {"prediction_id": "8a5d0c42-5d9a-4f55-9a53-6f1c0c3c9b11", "label": "1"},
        {"repo": "acme\u0000app", "commit_sha": SHA, "label": 1},  # a NUL byte in an identifier
    ]
    for body in bad:
        response = client.post("/v1/feedback", json=body, headers=admin())
        assert response.status_code == 422, body
        assert response.json()["detail"]


def test_feedback_needs_a_token_of_a_role_that_may_write_labels(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    # Issue #14: an anonymous client flipped a commit's label four times.
    client = make_client(
        deployed.name, feedback_token=FEEDBACK_TOKEN, predict_token="predict-4c1e8b2d7a9f3e6b"
    )
    body = {"repo": "acme/app", "commit_sha": SHA, "label": 1}
    anonymous = client.post("/v1/feedback", json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert (
        client.post("/v1/feedback", json=body, headers=admin("predict-4c1e8b2d7a9f3e6b")).status_code == 403
    )
    guess = client.post("/v1/feedback", json=body, headers=admin("guess"))
    assert guess.status_code == 403
    assert guess.json()["detail"] == (
        "invalid feedback token: send the value of DEFECTOPS_SERVE_FEEDBACK_TOKEN or "
        "DEFECTOPS_SERVE_ADMIN_TOKEN this service was started with"
    )
    in_url = client.post(f"/v1/feedback?token={FEEDBACK_TOKEN}", json=body)
    assert in_url.status_code == 400
    assert "tokens in the URL are refused" in in_url.json()["detail"]
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        assert log.feedback_history(repo="acme/app", commit_sha=SHA) == []
    assert client.post("/v1/feedback", json=body, headers=WRITER).status_code == 201


def test_a_label_from_szz_mining_is_never_overwritten_through_the_api(
    deployed: Deployed, make_client: MakeClient, tmp_path: Path
) -> None:
    from defectops.predlog import FeedbackRecord

    client = make_client(deployed.name, feedback_token=FEEDBACK_TOKEN)
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        log.add_feedback(FeedbackRecord(label=1, repo="acme/app", commit_sha=SHA, source="szz"), now=NOW)
    for headers in (WRITER, admin()):
        flipped = client.post(
            "/v1/feedback", json={"repo": "acme/app", "commit_sha": SHA, "label": 0}, headers=headers
        )
        assert flipped.status_code == 409
        assert "comes from szz" in flipped.json()["detail"]
    same = client.post(
        "/v1/feedback", json={"repo": "acme/app", "commit_sha": SHA, "label": 1}, headers=WRITER
    )
    assert same.status_code == 200  # agreeing with SZZ is harmless
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        history = log.feedback_history(repo="acme/app", commit_sha=SHA)
    assert [(h.label, h.source, h.superseded_at) for h in history] == [(1, "szz", None)]


def test_scoring_needs_the_predict_token_once_one_is_configured(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name, predict_token="predict-4c1e8b2d7a9f3e6b")
    body = {"records": [record_of(api_session.reference, 0)]}
    assert client.post("/v1/predict", json=body).status_code == 401
    assert client.post("/v1/predict", json=body, headers=admin("predict-4c1e8b2d7a9f3e6b")).status_code == 200
    assert client.post("/v1/predict", json=body, headers=admin()).status_code == 200


def test_fix_must_be_a_json_boolean_or_number(
    deployed: Deployed, make_client: MakeClient, api_session: Session
) -> None:
    client = make_client(deployed.name)
    record = record_of(api_session.reference, 0)
    for bad in ({"fix": "yes"}, {"fix": "true"}, {"repo": "a\u0000b"}, {"repo": "a\nb"}):
        response = client.post("/v1/predict", json={"records": [{**record, **bad}]})
        assert response.status_code == 422, bad
    for good in ({"fix": True}, {"fix": 1.0}, {"fix": 0}):
        assert client.post("/v1/predict", json={"records": [{**record, **good}]}).status_code == 200, good


def test_a_local_service_refusing_a_feedback_token_says_which_token_it_takes(
    deployed: Deployed, make_client: MakeClient
) -> None:
    # A local service with no token set takes only the documented local default admin token for feedback:
    # the 403 says so, and that the feedback token is unset, without printing any token.
    client = make_client(deployed.name, admin_token=None)
    body = {"repo": "acme/app", "commit_sha": SHA, "label": 1}
    refused = client.post("/v1/feedback", json=body, headers=admin(FEEDBACK_TOKEN))
    assert refused.status_code == 403
    detail = refused.json()["detail"]
    assert detail == (
        "invalid feedback token: send the local default admin token (DEFECTOPS_SERVE_ADMIN_TOKEN is unset; "
        "see 'Tokens and roles' in docs/serving.md); DEFECTOPS_SERVE_FEEDBACK_TOKEN is not set on this service"
    )
    assert LOCAL_ADMIN_TOKEN not in detail
    accepted = client.post("/v1/feedback", json=body, headers=admin(LOCAL_ADMIN_TOKEN))
    assert accepted.status_code == 201
