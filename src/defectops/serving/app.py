"""The FastAPI application: :func:`create_app` wires settings, registry, routers, errors and the lifespan.

Nothing happens at import time and little at creation: settings are checked (unsafe ones raise ConfigError, so
the service refuses to start) and objects are built; the prediction log is opened, its writer started and the
models loaded in the lifespan startup, and closed in order (writer drained first) at shutdown.

Errors: every :class:`~defectops.errors.DefectOpsError` becomes its ``http_status`` with
``{"detail": message}``; invalid bodies become 422 with one entry per problem (location, message, type; the
offending value is left out so a NaN cannot break the JSON of the error itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from defectops import __version__
from defectops.config import ServeSettings, Settings
from defectops.errors import DefectOpsError
from defectops.registry import ModelRegistry
from defectops.serving.manager import Clock
from defectops.serving.metrics import MeasureAndLimit
from defectops.serving.routers import (
    commits,
    feedback,
    health,
    metrics,
    models,
    predict,
    reviews,
    traffic,
    ui,
)
from defectops.serving.schemas import PredictRequest
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
        ui.router,
        ui.api,
    ):
        app.include_router(router)
    app.add_exception_handler(DefectOpsError, _defectops_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_middleware(MeasureAndLimit, metrics=service.metrics, max_body_bytes=serve.max_body_bytes)
    _document_bodies(app, [PredictRequest])
    return app


def _document_bodies(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add the schemas of bodies that routes parse themselves (see routers/predict.py) to OpenAPI."""
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
        return app.openapi_schema

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
    return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)
