"""A PostgreSQL server that accepts connections and never answers is an error, not a hang (issue #14).

The "server" is a real listening socket on 127.0.0.1 that completes TCP handshakes (the kernel does) and
never says a word: what a dead connection pooler or a half-up database looks like from the client. Without
a connect timeout libpq waits for the server's first message forever.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from defectops.errors import ConfigError, DefectOpsError, ModelError
from defectops.predlog import PredictionLog
from defectops.predlog import engine as predlog_engine
from defectops.registry import audit


@pytest.fixture
def silent_server() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_prediction_log_gives_up_on_a_silent_server(silent_server: int) -> None:
    # The timeout is a setting: any prediction-log URL (DEFECTOPS_SERVE_LOG_URL, DEFECTOPS_EVENTS_LOG_URL, ...)
    # may carry libpq's connect_timeout; 2 s is the smallest libpq honours.
    url = f"postgresql+psycopg://user:SECRET@127.0.0.1:{silent_server}/defectops?connect_timeout=2"
    with pytest.raises(DefectOpsError) as caught:
        PredictionLog.from_url(url)
    message = str(caught.value)
    assert "\n" not in message
    assert "SECRET" not in message
    assert "timeout" in message.lower()


def test_a_closed_port_is_one_line_naming_the_log_without_its_password(closed_port: int) -> None:
    url = f"postgresql+psycopg://user:SECRET@127.0.0.1:{closed_port}/defectops"
    with pytest.raises(DefectOpsError) as caught:
        PredictionLog.from_url(url)
    message = str(caught.value)
    assert "\n" not in message
    assert "SECRET" not in message
    assert message.startswith(
        f"cannot open the prediction log at postgresql+psycopg://user:***@127.0.0.1:{closed_port}"
    )
    assert "refused" in message.lower()


@pytest.mark.parametrize("value", ["0", "1", "301", "ten", "2.5"])
def test_an_unbounded_or_malformed_connect_timeout_is_refused(value: str, closed_port: int) -> None:
    url = f"postgresql+psycopg://user:SECRET@127.0.0.1:{closed_port}/defectops?connect_timeout={value}"
    with pytest.raises(ConfigError) as caught:
        predlog_engine.open_engine(url)
    assert str(caught.value) == (
        f"connect_timeout={value!r} in the prediction-log URL: use whole seconds from 2 to 300"
    )


class _CaughtError(Exception):
    pass


def _connect_parameters(url: str) -> dict[str, object]:
    """The keyword arguments the engine of ``url`` hands psycopg when it connects (caught, not sent)."""
    engine = predlog_engine.open_engine(url)
    seen: dict[str, object] = {}

    @event.listens_for(engine, "do_connect")
    def _capture(_dialect: object, _record: object, _args: object, params: dict[str, object]) -> None:
        seen.update(params)
        raise _CaughtError

    try:
        with pytest.raises(_CaughtError):
            engine.connect()
    finally:
        engine.dispose()
    return seen


def test_the_connect_timeout_of_the_url_reaches_libpq_and_there_is_always_one(closed_port: int) -> None:
    base = f"postgresql+psycopg://user:SECRET@127.0.0.1:{closed_port}/defectops"
    asked = _connect_parameters(base + "?connect_timeout=7&application_name=probe")
    assert asked["connect_timeout"] == 7
    assert asked["application_name"] == "probe"  # the URL's other parameters still reach libpq
    assert _connect_parameters(base)["connect_timeout"] == predlog_engine.CONNECT_TIMEOUT_SECONDS == 10


def test_the_audit_history_gives_up_on_a_silent_server(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "CONNECT_TIMEOUT_SECONDS", 2)
    url = f"postgresql+psycopg://user:SECRET@127.0.0.1:{silent_server}/defectops"
    with pytest.raises(ModelError) as caught:  # a server that does not answer: not a settings error
        audit.AuditLog(url).engine  # noqa: B018 - opening it is the test
    message = str(caught.value)
    assert "SECRET" not in message
    assert "timeout" in message.lower()
