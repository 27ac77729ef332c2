"""A PostgreSQL server that accepts connections and never answers is an error, not a hang (issue #14).

The "server" is a real listening socket on 127.0.0.1 that completes TCP handshakes (the kernel does) and
never says a word: what a dead connection pooler or a half-up database looks like from the client. Without
a connect timeout libpq waits for the server's first message forever.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from defectops.errors import ConfigError, DefectOpsError
from defectops.predlog import PredictionLog
from defectops.predlog import engine as predlog_engine
from defectops.registry import audit


@pytest.fixture
def silent_server() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def test_the_prediction_log_gives_up_on_a_silent_server(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predlog_engine, "CONNECT_TIMEOUT_SECONDS", 2)  # libpq's smallest
    url = f"postgresql+psycopg://user:SECRET@127.0.0.1:{silent_server}/defectops"
    with pytest.raises(DefectOpsError) as caught:
        PredictionLog.from_url(url)
    message = str(caught.value)
    assert "\n" not in message
    assert "SECRET" not in message
    assert "timeout" in message.lower()


def test_the_audit_history_gives_up_on_a_silent_server(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "CONNECT_TIMEOUT_SECONDS", 2)
    url = f"postgresql+psycopg://user:SECRET@127.0.0.1:{silent_server}/defectops"
    with pytest.raises(ConfigError) as caught:
        audit.AuditLog(url).engine  # noqa: B018 - opening it is the test
    message = str(caught.value)
    assert "SECRET" not in message
    assert "timeout" in message.lower()
