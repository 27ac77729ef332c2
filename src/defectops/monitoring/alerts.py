"""Notifications when the monitoring state changes: a Slack-compatible webhook and/or e-mail over SMTP.

Why only on changes: an alert that repeats every run while drift persists trains people to ignore it. Each
channel remembers the last state it was told about (``AlertState``, a small JSON file between runs); a run
notifies a channel only when the current state differs (ok -> drift, drift -> ok). A failed delivery leaves
that channel's memory unchanged, so the next run tries again, and a channel that did get the news is not
told twice.

Secrets: the SMTP password and the webhook URL (a Slack URL embeds its token) live in :class:`AlertSettings`
as ``SecretStr``; messages, outcomes and log lines name the webhook by scheme and host only and never
contain the password. Credentials are refused over an unencrypted SMTP connection to anything but a
loopback address.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import tempfile
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from defectops.config import AlertSettings, Channel
from defectops.errors import AlertDeliveryError, ConfigError, InputError
from defectops.monitoring.report import MonitoringResult, State

logger = logging.getLogger(__name__)

_MAX_REASONS = 10


def redact_url(url: str) -> str:
    """Scheme, host and port only: webhook paths carry tokens."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


# ---------------------------------------------------------------------------------------------------------
# state


class AlertState(BaseModel):
    """The last state each channel was told about (a channel never told counts as told 'ok')."""

    model_config = ConfigDict(extra="forbid")

    channels: dict[str, State] = Field(default_factory=dict)

    def notified(self, channel: str) -> State:
        """The state this channel last heard of."""
        return self.channels.get(channel, "ok")


def load_alert_state(path: Path) -> AlertState:
    """Read the alert state file; a missing file is the initial state."""
    if not path.exists():
        return AlertState()
    try:
        return AlertState.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise InputError(f"alert state file {path} is unreadable: {type(exc).__name__}") from None


def save_alert_state(path: Path, state: AlertState) -> None:
    """Write the alert state atomically (temp file + rename), so a crash never leaves half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".alert-state-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(state.model_dump_json(indent=2))
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write the alert state file {path}: {exc.strerror or exc}") from None


def channels_to_notify(state: State, alert_state: AlertState, channels: Sequence[Channel]) -> list[Channel]:
    """Channels whose last notified state differs from ``state``."""
    return [channel for channel in channels if alert_state.notified(channel) != state]


# ---------------------------------------------------------------------------------------------------------
# messages and delivery


class AlertMessage(BaseModel):
    """What is sent: a subject (e-mail) and a plain text body (both channels)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    text: str


def alerted_state(result: MonitoringResult) -> State:
    """What the channels are told: ``drift`` only when the run raised an alarm (docs/monitoring.md, "Alarms
    and diagnosis"); a few drifting features are diagnosis, shown in the report, and page nobody."""
    return "drift" if result.alarm else "ok"


def alert_message(result: MonitoringResult, previous: State) -> AlertMessage:
    """Describe a state change in a few lines (aggregates only: feature names and test statistics)."""
    header = (
        f"reference {result.n_reference} rows, window {result.n_window} predictions, "
        f"at {result.generated_at.isoformat()}"
    )
    if alerted_state(result) == "drift":
        subject = f"defectops: drift detected ({len(result.alarm_reasons)} alarm(s))"
        lines = [f"defectops monitoring: {previous} -> drift ({header})."]
        lines += [f"- alarm: {reason}" for reason in result.alarm_reasons]
        findings = result.reasons
        lines += [f"- {reason}" for reason in findings[:_MAX_REASONS]]
        if len(findings) > _MAX_REASONS:
            lines.append(f"- ... and {len(findings) - _MAX_REASONS} more")
    else:
        subject = "defectops: drift resolved"
        lines = [f"defectops monitoring: {previous} -> ok ({header}). No alarm any more."]
    realized = result.realized
    if realized.n_matured:
        lines.append(
            f"Realized on {realized.n_matured} matured labels: ROC-AUC {_num(realized.roc_auc)}, "
            f"F1 {_num(realized.f1)}, Brier {_num(realized.brier)}."
        )
    lines.append(
        f"Estimated (CBPE) on all scores: ROC-AUC {_num(result.estimated.roc_auc)}, "
        f"F1 {_num(result.estimated.f1)}."
    )
    return AlertMessage(subject=subject, text="\n".join(lines))


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def send_webhook(url: str, text: str, *, timeout: float = 10.0) -> None:
    """POST ``{"text": text}`` as JSON (what Slack, Mattermost and Teams-style hooks accept)."""
    import httpx

    target = redact_url(url)
    try:
        response = httpx.post(url, json={"text": text}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise AlertDeliveryError(f"webhook {target} unreachable: {type(exc).__name__}") from None
    if response.status_code >= 300:
        raise AlertDeliveryError(f"webhook {target} answered HTTP {response.status_code}")


def send_email(settings: AlertSettings, message: AlertMessage, *, date: datetime | None = None) -> None:
    """Send the message over SMTP (STARTTLS or implicit TLS as configured, login when credentials are set)."""
    if settings.smtp_host is None or settings.smtp_sender is None:
        raise ConfigError("e-mail alerts are not configured (DEFECTOPS_ALERT_SMTP_HOST and _SENDER)")
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = settings.smtp_sender
    email["To"] = ", ".join(settings.smtp_recipients)
    if date is not None:
        email["Date"] = format_datetime(date)
    email.set_content(message.text)
    host, port = settings.smtp_host, settings.smtp_port
    target = f"smtp {host}:{port}"
    try:
        context = ssl.create_default_context(
            cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
        )
        client: smtplib.SMTP
        if settings.smtp_security == "ssl":
            client = smtplib.SMTP_SSL(host, port, timeout=settings.smtp_timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=settings.smtp_timeout)
        with client:
            client.ehlo()
            if settings.smtp_security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if settings.smtp_username is not None and settings.smtp_password is not None:
                client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            client.send_message(email)
    except smtplib.SMTPAuthenticationError as exc:
        raise AlertDeliveryError(f"{target} rejected the login (SMTP {exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        raise AlertDeliveryError(f"{target} refused the message (SMTP {exc.smtp_code})") from None
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
        raise AlertDeliveryError(f"{target} failed: {type(exc).__name__}") from None


class DeliveryOutcome(BaseModel):
    """One channel's delivery attempt."""

    model_config = ConfigDict(frozen=True)

    channel: Channel
    target: str
    transition: str
    delivered: bool
    error: str | None = None


class AlertReport(BaseModel):
    """What one run notified, and the alert state to keep for the next run."""

    model_config = ConfigDict(frozen=True)

    state: State
    outcomes: list[DeliveryOutcome]
    alert_state: AlertState


def notify_state_change(
    result: MonitoringResult, settings: AlertSettings, alert_state: AlertState
) -> AlertReport:
    """Notify every configured channel whose last notified state differs from :func:`alerted_state`.

    Delivery failures are reported in the outcomes, not raised: monitoring succeeded even if Slack is down,
    and the unchanged state of that channel makes the next run retry.
    """
    remembered = dict(alert_state.channels)
    outcomes: list[DeliveryOutcome] = []
    state = alerted_state(result)
    for channel in channels_to_notify(state, alert_state, settings.channels):
        previous = alert_state.notified(channel)
        message = alert_message(result, previous)
        transition = f"{previous}->{state}"
        target = _target(channel, settings)
        try:
            if channel == "webhook" and settings.webhook_url is not None:
                send_webhook(
                    settings.webhook_url.get_secret_value(), message.text, timeout=settings.webhook_timeout
                )
            else:
                send_email(settings, message, date=result.generated_at)
        except AlertDeliveryError as exc:
            logger.warning("alert %s via %s not delivered: %s", transition, channel, exc)
            outcomes.append(
                DeliveryOutcome(
                    channel=channel, target=target, transition=transition, delivered=False, error=str(exc)
                )
            )
            continue
        logger.info("alert %s delivered via %s to %s", transition, channel, target)
        remembered[channel] = state
        outcomes.append(
            DeliveryOutcome(channel=channel, target=target, transition=transition, delivered=True)
        )
    return AlertReport(state=state, outcomes=outcomes, alert_state=AlertState(channels=remembered))


def _target(channel: Channel, settings: AlertSettings) -> str:
    if channel == "webhook" and settings.webhook_url is not None:
        return redact_url(settings.webhook_url.get_secret_value())
    return f"smtp {settings.smtp_host}:{settings.smtp_port}"
