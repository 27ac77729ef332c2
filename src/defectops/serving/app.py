"""The FastAPI application: :func:`create_app` wires settings, registry, routers, errors and the lifespan.

Nothing happens at import time and little at creation: settings are checked (unsafe ones raise ConfigError, so
the service refuses to start) and objects are built; the prediction log is opened, its writer started and the
models loaded in the lifespan startup, and closed in order (writer drained first) at shutdown.

Errors: every :class:`~defectops.errors.DefectOpsError` becomes its ``http_status`` with
``{"detail": message}``, and ``Retry-After`` when it has a ``retry_after`` (an outage: try again later);
invalid bodies become 422 with one entry per problem (location, message, type; the
offending value is left out so a NaN cannot break the JSON of the error itself), at most 20 of them with
bounded text, so the answer to a hostile body stays small.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from defectops import __version__
from defectops.config import ServeSettings, Settings
from defectops.console import redact_url
from defectops.errors import DefectOpsError
from defectops.registry import ModelRegistry
from defectops.serving.deps import SCHEMES
from defectops.serving.manager import Clock
from defectops.serving.metrics import MeasureAndLimit
from defectops.serving.routers import (
    commits,
    docs,
    feedback,
    health,
    metrics,
    models,
    predict,
    reviews,
    traffic,
    ui,
)
from defectops.serving.schemas import PredictRequest, open_operations, require_metrics
from defectops.serving.service import PredictionService

DESCRIPTION = """Just-in-time defect prediction for commits.

Score change metrics (`POST /v1/predict`) or commits of a configured repository (`POST /v1/commits/score`);
every answer carries a calibrated probability, a risk label and band, the model version, a prediction id and
the features that raised or lowered the risk most. Every answered prediction is in the prediction log before
the answer is sent; send the truth later to `POST /v1/feedback`. Admin endpoints need the bearer token.
"""


#: GIL switch interval of a service process in seconds (Python's default is 5 ms; see serving/server.py).
SWITCH_INTERVAL = 0.001


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    serve: ServeSettings | None = None,
    *,
    registry: ModelRegistry | None = None,
    clock: Clock | None = None,
    freeze_gc: bool = False,
) -> FastAPI:
    """Build the service app (nothing is opened or loaded before the lifespan starts).

    ``serve`` defaults to the settings tree's ``serve`` subtree and ``registry`` to the tree's MLflow;
    ``clock`` stamps predictions and audit events (default: UTC now). Unsafe settings raise ConfigError.
    ``freeze_gc`` (the server sets it; a process serving nothing else) moves everything alive after startup
    out of the garbage collector's reach (:func:`gc.freeze`): MLflow, pandas and scikit-learn leave about a
    million long-lived objects, and every full collection would walk them all in the middle of some request.
    """
    serve = serve if serve is not None else settings.serve
    admin_token = serve.check(settings)
    if registry is None:
        registry = ModelRegistry.from_settings(settings)
    service = PredictionService(
        settings, serve, admin_token=admin_token, registry=registry, clock=clock or _utc_now
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(service.start)
        if freeze_gc:
            import gc

            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(service.stop)

    app = FastAPI(
        title="defectops",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # routers/docs.py serves /docs without a CDN
        redoc_url=None,
    )
    app.state.service = service
    for router in (
        predict.router,
        commits.router,
        feedback.router,
        reviews.router,
        models.router,
        traffic.router,
        health.router,
        metrics.router,
        docs.router,
        ui.router,
        ui.api,
    ):
        app.include_router(router)
    docs.mount_assets(app)
    app.add_exception_handler(DefectOpsError, _defectops_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_middleware(
        MeasureAndLimit,
        metrics=service.metrics,
        max_body_bytes=serve.max_body_bytes,
        body_timeout_seconds=serve.body_timeout_seconds,
        max_object_keys=serve.json_max_object_keys,
        max_depth=serve.json_max_depth,
    )
    _document_bodies(app, [PredictRequest], service)
    return app


def _document_bodies(app: FastAPI, models: list[type[BaseModel]], service: PredictionService) -> None:
    """Add the schemas of bodies that routes parse themselves (see routers/predict.py) to OpenAPI, with the
    metrics the served champion needs marked required (:func:`require_metrics`)."""
    from fastapi.openapi.utils import get_openapi
    from pydantic.json_schema import models_json_schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _, definitions = models_json_schema(
                [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in definitions.get("$defs", {}).items():
                schemas.setdefault(name, schema)
            app.openapi_schema = document
        champion = service.deployment.champion
        document = require_metrics(app.openapi_schema, champion.features if champion is not None else ())
        return open_operations(document, open_schemes)

    unset = {"predict": service.serve.predict_token is None, "read": service.serve.read_token is None}
    open_schemes = [SCHEMES[role] for role in ("predict", "read") if unset[role]]

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """The app of one ``uvicorn --factory`` worker, from the environment (``defectops serve`` fills it).

    Called once per worker process at its start, so it also tunes that process (GIL switch interval).
    """
    import sys

    sys.setswitchinterval(SWITCH_INTERVAL)
    settings = Settings()
    return create_app(settings, settings.serve, freeze_gc=True)


async def _defectops_error(_request: Request, exc: DefectOpsError) -> JSONResponse:
    reason = redact_url(str(exc))
    if exc.http_status == 422:
        # The OpenAPI of every 422 is FastAPI's list of problems: a refusal decided here takes the same shape.
        problem = {"loc": ["body"], "msg": _bounded(reason, _MAX_REASON_TEXT), "type": "value_error"}
        return JSONResponse({"detail": [problem]}, status_code=422)
    # An error that passes by itself (a registry or store that does not answer for now) says when to retry.
    return JSONResponse({"detail": reason}, status_code=exc.http_status, headers=exc.http_headers())


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's answer, except that a 405's ``Allow`` names every method of the path: Starlette names only
    those of the first route matching it (``/v1/reviews`` has a GET route and a POST route)."""
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        headers = dict(exc.headers or {})
        allowed = {method.strip() for method in headers.get("Allow", "").split(",") if method.strip()}
        for template, operations in request.app.openapi().get("paths", {}).items():
            if compile_path(template)[0].match(request.url.path):
                allowed |= {method.upper() for method in operations}
        headers["Allow"] = ", ".join(sorted(allowed))
        exc = StarletteHTTPException(exc.status_code, exc.detail, headers=headers)
    return await http_exception_handler(request, exc)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with at most :data:`MAX_LISTED_ERRORS` problems, each with bounded text: the answer to a hostile
    body never grows with it (issue #14: 400,000 unknown keys once came back as a 41.9 MB error list)."""
    problems = exc.errors()
    listed = [
        {
            "loc": [str(part)[:_MAX_ERROR_TEXT] for part in error.get("loc", ())[:_MAX_LOC_PARTS]],
            "msg": str(error.get("msg", ""))[:_MAX_ERROR_TEXT],
            "type": str(error.get("type", ""))[:_MAX_ERROR_TEXT],
        }
        for error in problems[:MAX_LISTED_ERRORS]
    ]
    document: dict[str, Any] = {"detail": listed}
    if len(problems) > MAX_LISTED_ERRORS:
        document["omitted_errors"] = len(problems) - MAX_LISTED_ERRORS
    return JSONResponse(document, status_code=422)


#: Most problems one 422 answer lists (the rest are counted in ``omitted_errors``).
MAX_LISTED_ERRORS = 20
_MAX_ERROR_TEXT = 200
#: A refusal the service words itself (not an echo of the body) may be longer: every input a record lacks.
_MAX_REASON_TEXT = 2000


def _bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_MAX_LOC_PARTS = 8
