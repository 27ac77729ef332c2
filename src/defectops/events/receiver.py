"""The webhook receiver: ``POST /webhook`` takes GitHub ``push`` and ``pull_request`` deliveries.

Order of checks, cheapest and safest first: the size (``Content-Length``, then the bytes actually read: 413),
the signature (HMAC-SHA256 of the raw body under the shared secret, compared in constant time: 401, nothing
parsed, nothing enqueued), the delivery id and the JSON (400), then what the event asks for. Unknown
repositories and events that bring nothing to score are answered 200 ``ignored`` with the reason (logged).
A job is answered 202 ``queued`` only after the stream stored it; a delivery id seen before is answered 200
``duplicate`` and not stored again. The secret is never logged, nor echoed in an answer.

``GET /metrics`` is Prometheus text: deliveries by outcome and refusals by status from this process, and the
stream's length, pending events and dead letters read from the stream at each scrape.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from defectops.config import EventsSettings
from defectops.errors import DefectOpsError, InputError, PayloadTooLargeError
from defectops.events.records import (
    Outcome,
    Receipt,
    ScoreJob,
    checked_delivery,
    checked_event,
    parse_event,
    repository_name,
)
from defectops.events.signature import verify
from defectops.events.stream import EventStream

log = logging.getLogger("defectops.events")


class _Counters:
    def __init__(self) -> None:
        self.outcomes = {outcome.value: 0 for outcome in Outcome}
        self.refused: dict[int, int] = {}

    def refuse(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLargeError(f"payload of {declared} bytes is over the limit of {limit}")
        except ValueError:
            raise InputError("malformed Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"payload is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def classify(settings: EventsSettings, *, event: str, delivery: str, body: bytes) -> ScoreJob | Receipt:
    """The job a verified delivery asks for, or the receipt of one asking for none (InputError: malformed)."""
    if body.startswith(b"payload="):  # GitHub's default content type for a new webhook
        raise InputError(
            "the payload is form-encoded (application/x-www-form-urlencoded), not JSON: set the webhook's "
            "content type to application/json"
        )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError("the payload is not JSON") from None
    except RecursionError:  # arrays or objects nested deeper than the parser's recursion limit
        raise InputError("the payload is not JSON this receiver reads: nested too deeply") from None
    if event == "ping":
        return Receipt(delivery, Outcome.IGNORED, "ping")
    if event not in ("push", "pull_request"):
        return Receipt(delivery, Outcome.IGNORED, f"event {event!r} is not scored")
    repo = repository_name(payload)
    if repo not in settings.repositories:
        return Receipt(delivery, Outcome.IGNORED, f"repository {repo} is not configured")
    parsed = parse_event(event, delivery, payload, max_commits=settings.max_commits, received_at=time.time())
    if isinstance(parsed, str):
        return Receipt(delivery, Outcome.IGNORED, parsed)
    return parsed


async def receive(
    settings: EventsSettings, stream: EventStream, *, event: str, delivery: str, body: bytes
) -> Receipt:
    """What to do with one verified delivery, done: a job is enqueued before this returns."""
    found = classify(settings, event=event, delivery=delivery, body=body)
    if isinstance(found, Receipt):
        return found
    if await stream.publish_async(delivery, found.to_json(), key=found.repo):
        return Receipt(delivery, Outcome.QUEUED, job=found)
    return Receipt(delivery, Outcome.DUPLICATE, "delivery already received")


def create_receiver(settings: EventsSettings, secret: str, stream: EventStream) -> FastAPI:
    """The receiver's ASGI app (``secret`` is the one :meth:`EventsSettings.check` returned)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await stream.aclose()

    app = FastAPI(
        title="defectops events", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    counters = _Counters()
    app.state.stream = stream

    async def webhook(request: Request) -> JSONResponse:
        delivery = request.headers.get("x-github-delivery", "")
        try:
            body = await _read_body(request, settings.max_body_bytes)
            if not verify(secret, body, request.headers.get("x-hub-signature-256")):
                counters.refuse(401)
                log.warning(
                    "delivery %r refused: wrong or missing X-Hub-Signature-256 (from %s)",
                    delivery[:64],
                    request.client.host if request.client else "?",
                )
                return _answer(401, {"error": "wrong or missing signature"})
            delivery = checked_delivery(request.headers.get("x-github-delivery"))
            event = checked_event(request.headers.get("x-github-event"))
            receipt = await receive(settings, stream, event=event, delivery=delivery, body=body)
        except DefectOpsError as exc:
            status = 400 if isinstance(exc, InputError) else exc.http_status
            counters.refuse(status)
            log.warning("delivery %r refused with %d: %s", delivery[:64], status, exc)
            return _answer(status, {"error": str(exc)}, exc.http_headers())
        counters.outcomes[receipt.outcome.value] += 1
        if receipt.outcome is Outcome.IGNORED:
            log.info("delivery %s ignored: %s", receipt.delivery_id, receipt.reason)
        status = 202 if receipt.outcome is Outcome.QUEUED else 200
        return _answer(status, receipt.as_dict())

    # A plain Starlette route: FastAPI's parameter machinery costs a fifth of a webhook's time and the
    # handler reads the raw body itself anyway (the signature is over the exact bytes).
    app.router.add_route("/webhook", webhook, methods=["POST"])

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        try:
            stats = await run_in_threadpool(stream.stats)
        except DefectOpsError as exc:
            return _answer(503, {"status": "unavailable", "error": str(exc)}, exc.http_headers())
        return _answer(200, {"status": "ok", "stream": stats.as_dict()})

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        lines = [
            "# HELP defectops_events_deliveries_total Webhook deliveries accepted, by outcome.",
            "# TYPE defectops_events_deliveries_total counter",
            *(
                f'defectops_events_deliveries_total{{outcome="{name}"}} {count}'
                for name, count in sorted(counters.outcomes.items())
            ),
            "# HELP defectops_events_refused_total Webhook deliveries refused, by HTTP status.",
            "# TYPE defectops_events_refused_total counter",
            *(
                f'defectops_events_refused_total{{status="{status}"}} {count}'
                for status, count in sorted(counters.refused.items())
            ),
        ]
        try:
            stats = await run_in_threadpool(stream.stats)
            lines += [
                "# HELP defectops_events_stream_length Events stored and not yet done.",
                "# TYPE defectops_events_stream_length gauge",
                f'defectops_events_stream_length{{backend="{stats.backend}"}} {stats.length}',
                "# HELP defectops_events_pending Events handed to a worker and not yet acknowledged.",
                "# TYPE defectops_events_pending gauge",
                f'defectops_events_pending{{backend="{stats.backend}"}} {stats.pending}',
                "# HELP defectops_events_dead_letters Events given up on (see the dead-letter stream).",
                "# TYPE defectops_events_dead_letters gauge",
                f'defectops_events_dead_letters{{backend="{stats.backend}"}} {stats.dead_letters}',
                "# HELP defectops_events_stream_up Whether the stream answered this scrape.",
                "# TYPE defectops_events_stream_up gauge",
                "defectops_events_stream_up 1",
            ]
        except DefectOpsError:
            lines += ["# TYPE defectops_events_stream_up gauge", "defectops_events_stream_up 0"]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return app
