"""Redis Streams with a consumer group: the embedded default of :class:`~defectops.events.stream.EventStream`.

Keys (``S`` is the stream setting): ``S`` the stream, ``S:dead`` the dead letters, ``S:attempts`` a hash of
deliveries per message, ``S:errors`` the last error per message, ``S:delivery:<id>`` the delivery ids seen
(expiring after ``dedupe_hours``).

Publishing is one Lua script, so "remember the delivery id" and "append to the stream" happen together or not
at all: a receiver killed between the two cannot lose an event nor store it twice. Durability is Redis's: run
it with ``appendonly yes`` (``appendfsync always`` makes every acknowledged webhook survive a power loss;
``everysec``, Redis's default, loses at most the last second then). ``.ci/run`` and the tests do.

A worker claims events idle longer than the visibility timeout with ``XAUTOCLAIM`` before reading new ones
(``XREADGROUP >``), so an event whose worker was killed is taken over by the next worker that asks.

A Redis that stops answering (refused, connection dropped, timed out, loading its data after a restart) is an
:class:`~defectops.errors.EventStreamUnavailableError`, which a worker waits out; anything else it refuses is
a plain :class:`~defectops.errors.EventStreamError`. Both clients retry a command twice on a dropped
connection (a pooled connection left over from before a Redis restart fails on first use: the receiver's first
webhook after a restart was a 503).
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from defectops.errors import EventStreamError, EventStreamUnavailableError
from defectops.events.stream import StreamMessage, StreamStats

if TYPE_CHECKING:
    import redis

    from defectops.config import EventsSettings

#: Retries of a command whose connection dropped (with a short backoff), before it fails: enough for a stale
#: pooled connection after a Redis restart; an outage is the worker's to wait out (``stream_retry_seconds``).
_COMMAND_RETRIES = 2

_PUBLISH = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], '*', 'delivery', ARGV[2], 'job', ARGV[3])
end
return false
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisEventStream:
    """At-least-once delivery through a Redis stream and consumer group (thread-safe: a pooled client)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        stream: str,
        group: str,
        visibility_ms: int,
        dedupe_seconds: int,
        where: str,
        server: str = "Redis",
    ) -> None:
        self._client = client
        self.stream = stream
        self.group = group
        self.dead = f"{stream}:dead"
        self._attempts = f"{stream}:attempts"
        self._errors = f"{stream}:errors"
        self._visibility_ms = visibility_ms
        self._dedupe_seconds = dedupe_seconds
        self._where = where
        self._server = server
        self._publish = client.register_script(_PUBLISH)
        self._url = ""
        self._timeouts: tuple[float, float | None] = (
            5.0,
            None,
        )  # (connect, read); connect() sets the settings
        self._async: Any = None  # (redis.asyncio client, script, event loop), made in the receiver's loop

    @classmethod
    def connect(cls, settings: EventsSettings, *, prepare: bool = True) -> RedisEventStream:
        import redis

        where = _safe_url(settings.redis_url)
        try:
            # Bounded both ways: a Redis that does not accept, or accepts and never answers (a dead proxy), is
            # a one-line error after the timeout, not a hang; a blocking read waits block_ms on top.
            timeouts = (
                settings.redis_connect_timeout,
                settings.redis_read_timeout + settings.block_ms / 1000,
            )
            client = redis.Redis.from_url(
                settings.redis_url, **_client_options(timeouts), health_check_interval=30
            )
            stream = cls(
                client,
                stream=settings.stream,
                group=settings.group,
                visibility_ms=int(settings.visibility_timeout * 1000),
                dedupe_seconds=max(1, int(settings.dedupe_hours * 3600)),
                where=where,
                server=_server(settings.redis_url),
            )
            stream._url = settings.redis_url
            stream._timeouts = timeouts
            if prepare:
                stream.ensure_group()
        except (redis.RedisError, OSError, ValueError) as exc:
            raise EventStreamError(f"event stream {where}: {type(exc).__name__}: {exc}") from None
        return stream

    def _fail(self, what: str, exc: Exception) -> EventStreamError:
        import redis

        cause = f"{what} failed: {type(exc).__name__}: {exc}"
        message = f"event stream {self._where}: {cause}"
        outage = isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError) and not isinstance(
            exc, redis.AuthenticationError
        )
        if outage:
            return EventStreamUnavailableError(message, server=self._server, cause=cause)
        return EventStreamError(message)

    def prepare(self) -> None:
        import redis

        try:
            self.ensure_group()
        except (redis.RedisError, OSError) as exc:
            raise self._fail("create the consumer group", exc) from None

    def ensure_group(self) -> None:
        """Create the consumer group (from the stream's start, so nothing published before is missed)."""
        import redis

        try:
            self._client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- the interface (``key`` is not needed: one stream is one order) --------------------------------

    def publish(self, delivery_id: str, body: str, *, key: str | None = None) -> bool:
        import redis

        key = f"{self.stream}:delivery:{delivery_id}"
        try:
            added = self._publish(keys=[key, self.stream], args=[self._dedupe_seconds, delivery_id, body])
        except redis.RedisError as exc:
            raise self._fail("publish", exc) from None
        return added is not None

    async def publish_async(self, delivery_id: str, body: str, *, key: str | None = None) -> bool:
        import redis
        import redis.asyncio

        key = f"{self.stream}:delivery:{delivery_id}"
        try:
            loop = asyncio.get_running_loop()
            if self._async is None or self._async[2] is not loop:  # a client belongs to one event loop
                client = redis.asyncio.Redis.from_url(self._url, **_client_options(self._timeouts, aio=True))
                self._async = (client, client.register_script(_PUBLISH), loop)
            added = await self._async[1](
                keys=[key, self.stream], args=[self._dedupe_seconds, delivery_id, body]
            )
        except redis.RedisError as exc:
            raise self._fail("publish", exc) from None
        return added is not None

    def receive(self, consumer: str, *, count: int, block_ms: int) -> list[StreamMessage]:
        import redis

        try:
            claimed: Any = self._client.xautoclaim(
                self.stream, self.group, consumer, self._visibility_ms, start_id="0-0", count=count
            )
            entries = list(claimed[1])
            if not entries:
                read: Any = self._client.xreadgroup(
                    self.group, consumer, {self.stream: ">"}, count=count, block=block_ms
                )
                entries = [entry for _stream, batch in read or [] for entry in batch]
            entries = [(mid, fields) for mid, fields in entries if fields]  # deleted under us: skip
            if not entries:
                return []
            pipe = self._client.pipeline(transaction=False)
            for message_id, _fields in entries:
                pipe.hincrby(self._attempts, _text(message_id), 1)
            attempts = pipe.execute()
        except redis.RedisError as exc:
            raise self._fail("receive", exc) from None
        messages = []
        for (message_id, fields), tries in zip(entries, attempts, strict=True):
            decoded = {_text(k): _text(v) for k, v in fields.items()}
            messages.append(
                StreamMessage(
                    message_id=_text(message_id),
                    delivery_id=decoded.get("delivery", ""),
                    body=decoded.get("job", ""),
                    attempts=int(tries),
                )
            )
        return messages

    def ack(self, message: StreamMessage) -> None:
        import redis

        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.xack(self.stream, self.group, message.message_id)
            pipe.xdel(self.stream, message.message_id)
            pipe.hdel(self._attempts, message.message_id)
            pipe.hdel(self._errors, message.message_id)
            pipe.execute()
        except redis.RedisError as exc:
            raise self._fail("ack", exc) from None

    def note_failure(self, message: StreamMessage, error: str) -> None:
        import redis

        try:
            self._client.hset(self._errors, message.message_id, error[:2000])
        except redis.RedisError as exc:
            raise self._fail("note failure", exc) from None

    def dead_letter(self, message: StreamMessage, reason: str) -> None:
        import redis

        try:
            last = self._client.hget(self._errors, message.message_id)
            full = reason if last is None else f"{reason}; last error: {_text(last)}"
            pipe = self._client.pipeline(transaction=True)
            pipe.xadd(
                self.dead,
                {
                    "delivery": message.delivery_id,
                    "job": message.body,
                    "attempts": str(message.attempts),
                    "reason": full[:4000],
                    "message_id": message.message_id,
                },
            )
            pipe.xack(self.stream, self.group, message.message_id)
            pipe.xdel(self.stream, message.message_id)
            pipe.hdel(self._attempts, message.message_id)
            pipe.hdel(self._errors, message.message_id)
            pipe.execute()
        except redis.RedisError as exc:
            raise self._fail("dead-letter", exc) from None

    def dead_letter_reasons(self, limit: int = 100) -> list[tuple[str, str]]:
        import redis

        try:
            rows: Any = self._client.xrevrange(self.dead, count=limit)
        except redis.RedisError as exc:
            raise self._fail("read dead letters", exc) from None
        found = []
        for _mid, fields in rows:
            decoded = {_text(k): _text(v) for k, v in fields.items()}
            found.append((decoded.get("delivery", ""), decoded.get("reason", "")))
        return found

    def stats(self) -> StreamStats:
        import redis

        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.xlen(self.stream)
            pipe.xpending(self.stream, self.group)
            pipe.xlen(self.dead)
            length, pending, dead = pipe.execute()
        except redis.RedisError as exc:
            raise self._fail("stats", exc) from None
        return StreamStats(
            backend="redis",
            length=int(length),
            pending=int(pending.get("pending", 0) if isinstance(pending, dict) else 0),
            dead_letters=int(dead),
        )

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async[0].aclose()
            self._async = None


def _client_options(timeouts: tuple[float, float | None], *, aio: bool = False) -> dict[str, Any]:
    """Timeouts and the retry of a dropped connection, the same for the worker's and the receiver's client.

    ``from_url`` gives each connection no retry at all (the client's default retry applies only without a
    URL), and ``redis.asyncio`` does not notice a connection the server closed before using it."""
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    if aio:
        from redis.asyncio.retry import Retry as AsyncRetry

        retry: Any = AsyncRetry(
            ExponentialBackoff(cap=0.5, base=0.05), _COMMAND_RETRIES, (RedisConnectionError,)
        )
    else:
        from redis.retry import Retry

        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), _COMMAND_RETRIES, (RedisConnectionError,))
    return {"socket_connect_timeout": timeouts[0], "socket_timeout": timeouts[1], "retry": retry}


def _server(url: str) -> str:
    """``Redis at host:port`` (or at its socket path): where the stream is, without user or password."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Redis"
    if parts.scheme == "unix":
        return f"Redis at {parts.path}"
    return f"Redis at {parts.hostname or 'localhost'}:{port or 6379}"


def _safe_url(url: str) -> str:
    """The Redis URL without its password (safe to log)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "redis://?"
    host = parts.hostname or socket.gethostname()
    netloc = f"{host}:{parts.port}" if parts.port else host
    if parts.username or parts.password:
        netloc = f"***@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
