"""Prometheus metrics of the service, and the ASGI middleware that measures every request.

Names follow the Prometheus conventions (``defectops_`` namespace, base units, ``_total`` for counters,
``_seconds`` for durations):

* ``defectops_http_requests_total{method,route,status}``: requests by route template (``/v1/predict``, not the
  raw path, so unknown URLs cannot blow up the label space; ``unmatched`` for no route) and status code;
* ``defectops_http_request_duration_seconds{method,route}``: latency histogram, from the first byte of the
  request to the last of the response;
* ``defectops_predictions_total{model_name,model_version,risk_band,served}``: answered (``served="true"``) and
  shadow predictions, counted after their log commit;
* ``defectops_prediction_score{model_name,model_version,served}``: histogram of the probabilities;
* ``defectops_prediction_log_commit_seconds`` and ``defectops_prediction_log_commit_rows``: group commits;
* ``defectops_feedback_total{status}``, ``defectops_model_reloads_total{outcome}``;
* ``defectops_model_info{model_name,model_version,role}``: 1 for each loaded model (champion/challenger);
  with several workers the maximum over the live workers.

Each app owns its registry (several apps in one process, as in tests, never collide). With several workers set
``PROMETHEUS_MULTIPROC_DIR`` (``defectops serve --workers N`` does): values then go to files there and
``/metrics`` aggregates all workers.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from defectops.errors import BodyTimeoutError, PayloadTooLargeError, UnsupportedMediaTypeError
from defectops.serving.guard import (
    BODY_METHODS,
    TOKEN_IN_URL,
    check_content_type,
    check_json_shape,
    header,
    needs_scan,
    read_body,
    replay,
    token_in_query,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for every value, as one increment per bucket.

    ``Histogram.observe`` costs a few microseconds per value, i.e. milliseconds per 1,000-record request.
    This counts the values per bucket with NumPy and adds each count once, through the histogram's own value
    objects (private in prometheus_client, stable for years; if they are missing, each value is observed). The
    bucket counts are the same, the sum equal up to rounding (a test compares the two).
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            histogram.observe(value)
        return
    array = np.asarray(values, dtype=np.float64)
    if not len(array):
        return
    # observe() puts a value in the first bucket whose upper bound is >= the value (non-cumulative storage).
    counts = np.bincount(np.searchsorted(np.asarray(bounds, dtype=np.float64), array, side="left"))
    for index, count in enumerate(counts.tolist()):
        if count and index < len(buckets):
            buckets[index].inc(count)
    total.inc(float(array.sum()))


class ServiceMetrics:
    """The metric objects of one app."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        """``multiprocess_dir``: where all workers of one server write their values (when several)."""
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "defectops_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "defectops_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "defectops_predictions",
            "Predictions committed to the log, by model version, risk band, and served or shadow.",
            ["model_name", "model_version", "risk_band", "served"],
            registry=r,
        )
        self.scores = Histogram(
            "defectops_prediction_score",
            "Predicted probabilities.",
            ["model_name", "model_version", "served"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.log_commit = Histogram(
            "defectops_prediction_log_commit_seconds",
            "Duration of one group commit of the prediction log.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.log_rows = Histogram(
            "defectops_prediction_log_commit_rows",
            "Prediction rows per group commit.",
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.feedback = Counter(
            "defectops_feedback", "Feedback received, by outcome.", ["status"], registry=r
        )
        self.reloads = Counter(
            "defectops_model_reloads", "Model reloads, by outcome.", ["outcome"], registry=r
        )
        self.model_info = Gauge(
            "defectops_model_info",
            "1 for every model version a worker has loaded, by role.",
            ["model_name", "model_version", "role"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.degraded = Gauge(
            "defectops_degraded",
            "1 while a worker serves a fallback because its registry champion does not load.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self._model_labels: set[tuple[str, str, str]] = set()

    def observe_commit(self, rows: int, seconds: float) -> None:
        self.log_commit.observe(seconds)
        self.log_rows.observe(rows)

    def observe_predictions(self, items: Iterable[tuple[str, str, str, bool, float]]) -> None:
        """Count (model name, version, band, served, score) tuples; one label lookup per distinct key, and
        the scores of each key added to the histogram in one step (:func:`observe_many`)."""
        bands: Tally[tuple[str, str, str, str]] = Tally()
        scores: dict[tuple[str, str, str], list[float]] = {}
        for name, version, band, served, probability in items:
            flag = "true" if served else "false"
            bands[(name, version, band, flag)] += 1
            key = (name, version, flag)
            values = scores.get(key)
            if values is None:
                values = scores[key] = []
            values.append(probability)
        for key, values in scores.items():
            observe_many(self.scores.labels(*key), values)
        for labels, count in bands.items():
            self.predictions.labels(*labels).inc(count)

    def set_models(self, models: Iterable[tuple[str, str, str]]) -> None:
        """Make ``defectops_model_info`` show exactly these (name, version, role) with value 1.

        Series of models no longer loaded are removed; in multiprocess mode, where a worker cannot delete what
        it wrote to its file, they are set to 0 instead.
        """
        wanted = set(models)
        for labels in self._model_labels - wanted:
            if self.multiprocess_dir is not None:
                self.model_info.labels(*labels).set(0)
            else:
                self.model_info.remove(*labels)
        for labels in wanted:
            self.model_info.labels(*labels).set(1)
        self._model_labels = wanted

    def set_degraded(self, degraded: bool) -> None:
        self.degraded.set(1 if degraded else 0)

    def exposition(self) -> tuple[bytes, str]:
        if self.multiprocess_dir is not None:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MeasureAndLimit:
    """Pure ASGI middleware: request metrics and every check of a request body, in one cheap layer.

    A body sent to ``POST``/``PUT``/``PATCH`` must be ``application/json`` (415), arrive within
    ``body_timeout_seconds`` (408) and stay within ``max_body_bytes`` (413; a ``Content-Length`` above it is
    refused before anything is read), and its JSON must keep to ``max_object_keys`` keys per object and
    ``max_depth`` levels (413); see :mod:`defectops.serving.guard`. The body is read here and handed on whole.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        max_body_bytes: int,
        body_timeout_seconds: float,
        max_object_keys: int,
        max_depth: int,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.max_object_keys = max_object_keys
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            if token_in_query(scope):  # before any route, so no path answers a token pasted into its URL
                await _reject(send_wrapper, 400, TOKEN_IN_URL)
                return
            if scope.get("method") in BODY_METHODS:
                try:
                    body = await self._checked_body(scope, receive)
                except (PayloadTooLargeError, UnsupportedMediaTypeError, BodyTimeoutError) as rejected:
                    await _reject(send_wrapper, rejected.http_status, str(rejected))
                    return
                if not _is_utf8(body):  # else FastAPI answers an undocumented 400 (schemathesis, #14)
                    await _reject(send_wrapper, 422, _NOT_UTF8)
                    return
                await self.app(scope, replay(body, receive), send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)

    async def _checked_body(self, scope: Scope, receive: Receive) -> bytes:
        length = _content_length(scope)
        if length == 0 or (length is None and header(scope, b"transfer-encoding") is None):
            return b""  # no body at all (POST /v1/models/reload): nothing to check
        check_content_type(scope)
        if length is not None and length > self.max_body_bytes:
            limit = self.max_body_bytes
            raise PayloadTooLargeError(f"request body of {length} bytes exceeds the limit of {limit}")
        body = await read_body(receive, limit=self.max_body_bytes, timeout=self.body_timeout_seconds)
        if needs_scan(body, max_keys=self.max_object_keys, max_depth=self.max_depth):
            # Batches and hostile bodies: scanned on a worker thread (NumPy releases the GIL), so the event
            # loop keeps answering other requests meanwhile.
            await anyio.to_thread.run_sync(
                partial(check_json_shape, body, max_keys=self.max_object_keys, max_depth=self.max_depth)
            )
        return body


#: The 422 of a body that is not UTF-8, in the shape of every 422 (a list of problems).
_NOT_UTF8: Final = [{"loc": ["body"], "msg": "the body is not UTF-8 encoded JSON", "type": "json_invalid"}]


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _content_length(scope: Scope) -> int | None:
    raw = header(scope, b"content-length")
    try:
        return None if raw is None else int(raw)
    except ValueError:
        return None


async def _reject(send: Any, status: int, detail: object) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
