"""A Redis that refuses, or accepts and never answers, is a one-line error, not a hang (issue #14).

Both "servers" are real loopback sockets: a port nothing listens on (the kernel refuses the connection), and a
listening socket that completes TCP handshakes and never says a word (a dead proxy, a wedged server). Before,
the stream's client had no read timeout: the first command on a silent server waited forever.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from defectops.config import EventsSettings
from defectops.errors import EventStreamError
from defectops.events.redis_stream import RedisEventStream


@pytest.fixture
def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def _refusal(settings: EventsSettings) -> str:
    with pytest.raises(EventStreamError) as caught:
        RedisEventStream.connect(settings)
    message = str(caught.value)
    assert "\n" not in message
    assert "SECRET" not in message
    return message


def test_a_closed_port_is_one_line_without_the_password(closed_port: int) -> None:
    settings = EventsSettings(redis_url=f"redis://:SECRET@127.0.0.1:{closed_port}/0", redis_connect_timeout=1)
    message = _refusal(settings)
    assert message.startswith(f"event stream redis://***@127.0.0.1:{closed_port}/0: ConnectionError: ")
    assert "refused" in message.lower()


def test_a_silent_server_times_out_after_the_read_timeout_of_the_settings(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEFECTOPS_EVENTS_REDIS_URL", f"redis://:SECRET@127.0.0.1:{silent_port}/0")
    monkeypatch.setenv("DEFECTOPS_EVENTS_REDIS_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("DEFECTOPS_EVENTS_BLOCK_MS", "1")
    settings = EventsSettings()
    assert settings.redis_read_timeout == 0.5
    message = _refusal(settings)
    assert message.startswith(f"event stream redis://***@127.0.0.1:{silent_port}/0: ")
    assert "timeout" in message.lower()


@pytest.mark.parametrize("field", ["redis_connect_timeout", "redis_read_timeout"])
@pytest.mark.parametrize("value", [0, -1, 10_000])
def test_an_unbounded_timeout_is_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        EventsSettings(**{field: value})
