"""Alerts on state changes, against a real local HTTP server and a real local SMTP server (see conftest)."""

from __future__ import annotations

import logging
import socket
from email import message_from_string
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from defectops.config import AlertSettings, load_alert_settings
from defectops.errors import AlertDeliveryError, ConfigError, InputError
from defectops.monitoring.alerts import (
    AlertState,
    alert_message,
    channels_to_notify,
    load_alert_state,
    notify_state_change,
    redact_url,
    save_alert_state,
    send_email,
    send_webhook,
)


def _parse(data: str) -> EmailMessage:
    message = message_from_string(data, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_channels_to_notify_only_on_changes() -> None:
    state = AlertState(channels={"webhook": "drift"})
    assert channels_to_notify("drift", state, ["webhook", "email"]) == ["email"]  # email never told: 'ok'
    assert channels_to_notify("ok", state, ["webhook", "email"]) == ["webhook"]
    assert channels_to_notify("ok", AlertState(), ["webhook", "email"]) == []


def test_alert_message_describes_the_change(drift_result: Any, ok_result: Any) -> None:
    message = alert_message(drift_result, "ok")
    assert message.subject.startswith("defectops: drift detected")
    assert "ok -> drift" in message.text
    assert all(f"- {reason}" in message.text for reason in drift_result.reasons)
    assert "Realized on 500 matured labels" in message.text
    back = alert_message(ok_result, "drift")
    assert back.subject == "defectops: drift resolved"
    assert "drift -> ok" in back.text


def test_webhook_alerts_on_each_change_and_never_repeats(
    webhook_server: Any, ok_result: Any, drift_result: Any, tmp_path: Path
) -> None:
    settings = AlertSettings(webhook_url=webhook_server.url)
    state_file = tmp_path / "alert-state.json"
    sent_per_run = []
    for result in (ok_result, drift_result, drift_result, ok_result, ok_result, drift_result):
        report = notify_state_change(result, settings, load_alert_state(state_file))
        save_alert_state(state_file, report.alert_state)
        sent_per_run.append([outcome.transition for outcome in report.outcomes])
    # initial 'ok' is not news; then ok->drift, (held), drift->ok, (held), ok->drift
    assert sent_per_run == [[], ["ok->drift"], [], ["drift->ok"], [], ["ok->drift"]]
    assert len(webhook_server.requests) == 3
    first = webhook_server.requests[0]
    assert first["path"] == "/services/T000/B000/secret-token"
    assert first["content_type"] == "application/json"
    assert set(first["body"]) == {"text"}  # Slack-compatible: {"text": ...}
    assert "ok -> drift" in first["body"]["text"]
    assert "drift -> ok" in webhook_server.requests[1]["body"]["text"]
    assert load_alert_state(state_file).channels == {"webhook": "drift"}


def test_drift_without_an_alarm_pages_nobody(webhook_server: Any, drift_result: Any) -> None:
    # the same findings as a diagnosis only (a few features, no performance or score change): not news
    assert drift_result.alarm
    diagnosis = drift_result.model_copy(update={"alarm": False, "alarm_reasons": []})
    assert diagnosis.state == "drift"
    settings = AlertSettings(webhook_url=webhook_server.url)
    report = notify_state_change(diagnosis, settings, AlertState())
    assert (report.state, report.outcomes) == ("ok", [])
    assert webhook_server.requests == []
    message = alert_message(drift_result, "ok").text
    assert all(f"- alarm: {reason}" in message for reason in drift_result.alarm_reasons)


def test_a_failed_webhook_is_retried_next_run_and_hides_the_token(
    webhook_server: Any, drift_result: Any
) -> None:
    settings = AlertSettings(webhook_url=webhook_server.url)
    webhook_server.status = 500
    report = notify_state_change(drift_result, settings, AlertState())
    assert [(o.delivered, o.error) for o in report.outcomes] == [
        (False, f"webhook {redact_url(webhook_server.url)} answered HTTP 500")
    ]
    assert "secret-token" not in report.model_dump_json()
    assert report.alert_state.channels == {}  # not told: the next run tries again
    webhook_server.status = 200
    retry = notify_state_change(drift_result, settings, report.alert_state)
    assert [o.delivered for o in retry.outcomes] == [True]
    assert retry.alert_state.channels == {"webhook": "drift"}
    assert len(webhook_server.requests) == 2


def test_unreachable_webhook_raises_a_redacted_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/hooks/very-secret"
    with pytest.raises(AlertDeliveryError) as info:
        send_webhook(url, "hello", timeout=2.0)
    assert "unreachable" in str(info.value)
    assert "very-secret" not in str(info.value)


def test_redact_url_keeps_scheme_host_and_port() -> None:
    assert redact_url("https://hooks.slack.com/services/T1/B2/XYZ") == "https://hooks.slack.com/…"
    assert redact_url("http://127.0.0.1:8080/x?token=1") == "http://127.0.0.1:8080/…"


def test_email_over_plain_smtp(smtp_server: Any, drift_result: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFECTOPS_ALERT_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("DEFECTOPS_ALERT_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("DEFECTOPS_ALERT_SMTP_SECURITY", "none")
    monkeypatch.setenv("DEFECTOPS_ALERT_SMTP_SENDER", "defectops@example.org")
    monkeypatch.setenv("DEFECTOPS_ALERT_SMTP_RECIPIENTS", "ops@example.org, lead@example.org")
    settings = load_alert_settings()
    assert settings.channels == ["email"]
    report = notify_state_change(drift_result, settings, AlertState())
    assert [(o.channel, o.delivered) for o in report.outcomes] == [("email", True)]
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received.mail_from == "defectops@example.org"
    assert received.recipients == ["ops@example.org", "lead@example.org"]
    assert received.tls is False
    email = _parse(received.data)
    assert email["Subject"].startswith("defectops: drift detected")
    assert email["To"] == "ops@example.org, lead@example.org"
    assert email["Date"] == "Wed, 25 Nov 2026 13:00:00 +0000"  # the result's generated_at, no hidden clock
    assert drift_result.reasons[0] in email.get_content()


def test_email_with_starttls_and_login_never_leaks_the_password(
    smtp_tls_server: Any, drift_result: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = AlertSettings(
        smtp_host=smtp_tls_server.host,
        smtp_port=smtp_tls_server.port,
        smtp_security="starttls",
        smtp_username=smtp_tls_server.user,
        smtp_password=smtp_tls_server.password,
        smtp_sender="defectops@example.org",
        smtp_recipients=["ops@example.org"],
        smtp_ca_file=smtp_tls_server.cert_file,
    )
    report = notify_state_change(drift_result, settings, AlertState())
    assert [o.delivered for o in report.outcomes] == [True]
    received = smtp_tls_server.messages[0]
    assert received.tls is True
    assert received.user == smtp_tls_server.user
    # the password only ever travelled inside TLS
    assert smtp_tls_server.transcript[:4] == ["plain:EHLO", "plain:STARTTLS", "tls:EHLO", "tls:AUTH"]
    password = smtp_tls_server.password
    assert "delivered via email" in caplog.text  # the log is captured ...
    assert password not in caplog.text  # ... and holds no password
    assert password not in report.model_dump_json()
    assert password not in repr(settings)
    assert password not in str(settings.model_dump())


def test_wrong_smtp_password_is_a_delivery_error_without_secrets(
    smtp_tls_server: Any, drift_result: Any
) -> None:
    settings = AlertSettings(
        smtp_host=smtp_tls_server.host,
        smtp_port=smtp_tls_server.port,
        smtp_username=smtp_tls_server.user,
        smtp_password="wrong-password-123",
        smtp_sender="defectops@example.org",
        smtp_recipients=["ops@example.org"],
        smtp_ca_file=smtp_tls_server.cert_file,
    )
    with pytest.raises(AlertDeliveryError, match="rejected the login") as info:
        send_email(settings, alert_message(drift_result, "ok"))
    assert "wrong-password-123" not in str(info.value)
    assert "535" in str(info.value)
    assert smtp_tls_server.messages == []


def test_starttls_refuses_an_untrusted_certificate(smtp_tls_server: Any, drift_result: Any) -> None:
    settings = AlertSettings(
        smtp_host=smtp_tls_server.host,
        smtp_port=smtp_tls_server.port,
        smtp_username=smtp_tls_server.user,
        smtp_password=smtp_tls_server.password,
        smtp_sender="defectops@example.org",
        smtp_recipients=["ops@example.org"],
    )  # no smtp_ca_file: the self-signed certificate is not trusted
    with pytest.raises(AlertDeliveryError, match="SSLCertVerificationError"):
        send_email(settings, alert_message(drift_result, "ok"))
    assert "tls:AUTH" not in smtp_tls_server.transcript


def test_one_channel_failing_does_not_repeat_the_other(
    webhook_server: Any, smtp_server: Any, drift_result: Any
) -> None:
    settings = AlertSettings(
        webhook_url=webhook_server.url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
        smtp_sender="defectops@example.org",
        smtp_recipients=["ops@example.org"],
    )
    webhook_server.status = 503
    first = notify_state_change(drift_result, settings, AlertState())
    assert [(o.channel, o.delivered) for o in first.outcomes] == [("webhook", False), ("email", True)]
    assert first.alert_state.channels == {"email": "drift"}
    webhook_server.status = 200
    second = notify_state_change(drift_result, settings, first.alert_state)
    assert [(o.channel, o.delivered) for o in second.outcomes] == [("webhook", True)]
    assert len(smtp_server.messages) == 1


def test_unreachable_smtp_server(drift_result: Any) -> None:
    settings = AlertSettings(
        smtp_host="127.0.0.1",
        smtp_port=_closed_port(),
        smtp_security="none",
        smtp_sender="a@example.org",
        smtp_recipients=["b@example.org"],
        smtp_timeout=2.0,
    )
    with pytest.raises(AlertDeliveryError, match="ConnectionRefusedError"):
        send_email(settings, alert_message(drift_result, "ok"))


def test_alert_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="unencrypted"):
        AlertSettings(
            smtp_host="mail.example.org",
            smtp_security="none",
            smtp_username="u",
            smtp_password="p",
            smtp_sender="a@example.org",
            smtp_recipients=["b@example.org"],
        )
    with pytest.raises(ConfigError, match="sender"):
        AlertSettings(smtp_host="mail.example.org")
    with pytest.raises(ConfigError, match="go together"):
        AlertSettings(
            smtp_host="mail.example.org",
            smtp_username="u",
            smtp_sender="a@x.org",
            smtp_recipients=["b@x.org"],
        )
    with pytest.raises(ConfigError, match="smtp_port"):
        load_alert_settings(smtp_port=0)
    assert AlertSettings().channels == []


def test_alert_state_file_round_trip_and_corruption(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.json"
    assert load_alert_state(path) == AlertState()
    save_alert_state(path, AlertState(channels={"webhook": "drift", "email": "ok"}))
    assert load_alert_state(path).channels == {"webhook": "drift", "email": "ok"}
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="unreadable"):
        load_alert_state(path)
