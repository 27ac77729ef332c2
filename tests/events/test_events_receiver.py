"""The webhook receiver against a real Redis: signatures, idempotency, bad input, /metrics."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from defectops.config import Settings
from defectops.errors import ConfigError
from defectops.events import ScoreJob, create_receiver, open_stream
from event_world import REPO, SECRET, push_payload, signed
from gitrepo import RepoBuilder

# every test against both streams: Redis and Kafka (Tansu), see conftest.py
pytestmark = pytest.mark.parametrize("stream_backend", ["redis", "kafka"], indirect=True)


@pytest.fixture
def receiver(settings: Settings):
    events = settings.events
    stream = open_stream(events)
    with TestClient(create_receiver(events, events.check(settings), stream)) as client:
        yield client, stream
    stream.close()


def test_a_signed_push_is_queued_once_and_a_replay_is_a_duplicate(receiver, upstream: RepoBuilder) -> None:
    client, stream = receiver
    body, headers = signed(
        push_payload(upstream, upstream.shas[1:], before=upstream.shas[0]), delivery="abc-1"
    )
    first = client.post("/webhook", content=body, headers=headers)
    assert first.status_code == 202
    assert first.json() == {"delivery": "abc-1", "outcome": "queued", "reason": ""}
    replay = client.post("/webhook", content=body, headers=headers)
    assert replay.status_code == 200
    assert replay.json()["outcome"] == "duplicate"
    assert stream.stats().length == 1
    [message] = stream.receive("t", count=10, block_ms=10)
    job = ScoreJob.from_json(message.body)
    assert job.repo == REPO
    assert job.commits == tuple(upstream.shas[1:])
    assert job.head == upstream.shas[-1]
    assert message.attempts == 1


def test_wrong_or_missing_signature_is_401_enqueues_nothing_and_never_logs_the_secret(
    receiver, upstream: RepoBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    client, stream = receiver
    caplog.set_level(logging.DEBUG)
    body, headers = signed(
        push_payload(upstream, upstream.shas[1:], before=upstream.shas[0]), secret="not-it"
    )
    assert client.post("/webhook", content=body, headers=headers).status_code == 401
    del headers["X-Hub-Signature-256"]
    assert client.post("/webhook", content=body, headers=headers).status_code == 401
    headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    response = client.post("/webhook", content=body, headers=headers)
    assert response.status_code == 401
    assert SECRET not in response.text
    assert stream.stats().length == 0
    assert "refused" in caplog.text
    assert SECRET not in caplog.text
    metrics = client.get("/metrics").text
    assert 'defectops_events_refused_total{status="401"} 3' in metrics


def test_malformed_payloads_are_400(receiver) -> None:
    client, stream = receiver
    for payload in (
        b"{not json",
        b'{"ref": "refs/heads/main"}',
        b'{"repository": {"full_name": "acme/widgets"}}',
        b"[" * 100_000
        + b"]" * 100_000,  # signed, but nested past the JSON parser's recursion limit: was a 500
    ):
        _, headers = signed({})
        from defectops.events import sign

        headers["X-Hub-Signature-256"] = sign(SECRET, payload)
        response = client.post("/webhook", content=payload, headers=headers)
        assert response.status_code == 400, payload[:40]
        assert response.json()["error"], payload[:40]
    body, headers = signed({"repository": {"full_name": "acme/widgets"}})
    headers["X-GitHub-Delivery"] = ""
    assert client.post("/webhook", content=body, headers=headers).status_code == 400
    assert stream.stats().length == 0


def test_a_delivery_without_its_event_header_is_400_not_ignored(receiver, upstream: RepoBuilder) -> None:
    # GitHub names the event of every delivery; without the header the request is not GitHub's (it was a 200
    # "ignored" as if an event of a kind not scored had come).
    client, stream = receiver
    body, headers = signed(push_payload(upstream, upstream.shas[1:], before=upstream.shas[0]), delivery="e-1")
    del headers["X-GitHub-Event"]
    response = client.post("/webhook", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "missing or malformed X-GitHub-Event header"}
    headers["X-GitHub-Event"] = "push; rm -rf"
    assert client.post("/webhook", content=body, headers=headers).status_code == 400
    assert stream.stats().length == 0


def test_a_form_encoded_webhook_is_400_saying_which_content_type_to_set(
    receiver, upstream: RepoBuilder
) -> None:
    # GitHub's default content type for a new webhook is application/x-www-form-urlencoded: the JSON is the
    # form field "payload" (signed as sent). The answer said only "the payload is not JSON".
    import json
    from urllib.parse import urlencode

    from defectops.events import sign

    client, stream = receiver
    payload = push_payload(upstream, upstream.shas[1:], before=upstream.shas[0])
    body = urlencode({"payload": json.dumps(payload)}).encode()
    _, headers = signed({})
    headers["X-Hub-Signature-256"] = sign(SECRET, body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = client.post("/webhook", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "the payload is form-encoded (application/x-www-form-urlencoded), not JSON: set the webhook's "
        "content type to application/json"
    )
    assert stream.stats().length == 0


def test_a_payload_over_the_limit_is_413(
    settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEFECTOPS_EVENTS_MAX_BODY_BYTES", "2048")
    settings = Settings()
    stream = open_stream(settings.events)
    try:
        with TestClient(create_receiver(settings.events, settings.events.check(settings), stream)) as client:
            body, headers = signed({"repository": {"full_name": REPO}, "padding": "x" * 5000})
            assert client.post("/webhook", content=body, headers=headers).status_code == 413

            def chunks():  # no Content-Length: the limit holds on the bytes actually read
                yield body[:1000]
                yield body[1000:]

            assert client.post("/webhook", content=chunks(), headers=headers).status_code == 413
            assert stream.stats().length == 0
    finally:
        stream.close()


def test_unknown_repositories_and_unscored_events_are_ignored_with_a_reason(
    receiver, upstream: RepoBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    client, stream = receiver
    caplog.set_level(logging.INFO, logger="defectops.events")
    payload = push_payload(upstream, upstream.shas[1:], before=upstream.shas[0])
    payload["repository"] = {"full_name": "someone/else"}
    body, headers = signed(payload, delivery="x-1")
    answer = client.post("/webhook", content=body, headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {
        "delivery": "x-1",
        "outcome": "ignored",
        "reason": "repository someone/else is not configured",
    }
    assert "someone/else is not configured" in caplog.text
    body, headers = signed({"zen": "hi", "repository": {"full_name": REPO}}, event="ping", delivery="x-2")
    assert client.post("/webhook", content=body, headers=headers).json()["outcome"] == "ignored"
    deleted = push_payload(upstream, [upstream.shas[0]], before=upstream.shas[0])
    deleted.update(after="0" * 40, deleted=True, commits=[])
    body, headers = signed(deleted, delivery="x-3")
    assert (
        client.post("/webhook", content=body, headers=headers).json()["reason"]
        == "refs/heads/main was deleted"
    )
    assert stream.stats().length == 0
    assert 'defectops_events_deliveries_total{outcome="ignored"} 3' in client.get("/metrics").text


def test_a_pull_request_is_queued_for_its_head(receiver, upstream: RepoBuilder) -> None:
    client, stream = receiver
    payload = {
        "action": "synchronize",
        "number": 7,
        "repository": {"full_name": REPO},
        "pull_request": {
            "number": 7,
            "head": {"sha": upstream.shas[-1], "ref": "feature"},
            "base": {"sha": upstream.shas[0], "ref": "main"},
        },
    }
    body, headers = signed(payload, event="pull_request", delivery="pr-1")
    assert client.post("/webhook", content=body, headers=headers).status_code == 202
    [message] = stream.receive("t", count=1, block_ms=10)
    job = ScoreJob.from_json(message.body)
    assert (job.pull_number, job.head, job.base) == (7, upstream.shas[-1], upstream.shas[0])
    payload["action"] = "closed"
    body, headers = signed(payload, event="pull_request", delivery="pr-2")
    assert client.post("/webhook", content=body, headers=headers).json()["outcome"] == "ignored"
    # a number that is not an integer is malformed; JSON's true used to pass (a bool is a Python int) and
    # was queued as pull request #1
    for number in (True, "7", 7.0):
        payload.update(action="opened", number=number)
        payload["pull_request"]["number"] = number  # type: ignore[index]
        body, headers = signed(payload, event="pull_request", delivery=f"pr-{type(number).__name__}")
        answer = client.post("/webhook", content=body, headers=headers)
        assert answer.status_code == 400, number
        assert answer.json() == {"error": "pull_request payload has no number"}
    assert stream.stats().length == 1


def test_the_secret_is_refused_when_unsafe(
    settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEFECTOPS_EVENTS_SECRET", "  ")
    with pytest.raises(ConfigError, match="empty"):
        Settings().events.check(Settings())
    monkeypatch.delenv("DEFECTOPS_EVENTS_SECRET")
    assert Settings().events.check(Settings()) == "defectops-local-webhook"  # local mode, loopback
    monkeypatch.setenv("DEFECTOPS_EVENTS_HOST", "0.0.0.0")
    with pytest.raises(ConfigError, match="loopback"):
        Settings().events.check(Settings())
    monkeypatch.setenv("DEFECTOPS_MODE", "production")
    with pytest.raises(ConfigError, match="needs a webhook secret"):
        Settings().events.check(Settings())
    monkeypatch.setenv("DEFECTOPS_EVENTS_SECRET", "defectops-local-webhook")
    with pytest.raises(ConfigError, match="well-known"):
        Settings().events.check(Settings())
    monkeypatch.setenv("DEFECTOPS_EVENTS_SECRET", "short")
    with pytest.raises(ConfigError, match="at least"):
        Settings().events.check(Settings())
    monkeypatch.setenv("DEFECTOPS_EVENTS_SECRET", SECRET)
    assert Settings().events.check(Settings()) == SECRET
