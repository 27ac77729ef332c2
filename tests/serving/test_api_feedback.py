"""POST /v1/feedback: by prediction id or by commit, idempotent (201 written, 200 already there), 404, 422."""

from __future__ import annotations

from pathlib import Path

from defectops.predlog import PredictionLog
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import NOW, Deployed, MakeClient, Session, record_of

SHA = "c0ffee" + "0" * 34


def _one_prediction(client, session: Session, **ids: str) -> str:
    response = client.post("/v1/predict", json={"records": [{**record_of(session.reference, 0), **ids}]})
    assert response.status_code == 200
    return str(response.json()["predictions"][0]["prediction_id"])


def test_feedback_by_id_is_201_then_200_when_repeated_then_201_when_changed(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    client = make_client(deployed.name)
    prediction_id = _one_prediction(client, api_session)

    first = client.post("/v1/feedback", json={"prediction_id": prediction_id, "label": 1})
    assert first.status_code == 201
    assert first.json() | {"feedback_id": 0} == {
        "feedback_id": 0,
        "status": "recorded",
        "replaced_feedback_id": None,
        "matched_predictions": 1,
    }
    again = client.post("/v1/feedback", json={"prediction_id": prediction_id, "label": 1})
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["feedback_id"] == first.json()["feedback_id"]
    changed = client.post("/v1/feedback", json={"prediction_id": prediction_id, "label": 0, "source": "szz"})
    assert changed.status_code == 201
    assert changed.json()["status"] == "replaced"
    assert changed.json()["replaced_feedback_id"] == first.json()["feedback_id"]

    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        history = log.feedback_history(prediction_id=prediction_id)
        joined = log.joined(NOW.replace(year=2000), NOW.replace(year=2100))
    assert [(h.label, h.source, h.superseded_at is None) for h in history] == [
        (1, "api", False),
        (0, "szz", True),
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


def test_feedback_for_an_unknown_prediction_id_is_404(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    unknown = "8a5d0c42-5d9a-4f55-9a53-6f1c0c3c9b11"
    response = client.post("/v1/feedback", json={"prediction_id": unknown, "label": 1})
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
    ]
    for body in bad:
        response = client.post("/v1/feedback", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"]
