"""``/v1/models`` (what serves) and the admin actions on it: reload, promote, rollback."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter

from defectops.serving.deployment import Deployment
from defectops.serving.deps import AdminDep, ServiceDep
from defectops.serving.schemas import ErrorOut, ModelsResponse, PromoteRequest, RollbackRequest, TrafficSplit
from defectops.serving.service import PredictionService, model_out

router = APIRouter(prefix="/v1/models", tags=["models"])

_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A token in the URL (refused; send it in the header)."},
    401: {"model": ErrorOut, "description": "No bearer token."},
    403: {"model": ErrorOut, "description": "Wrong bearer token."},
    404: {"model": ErrorOut, "description": "Unknown model, version or alias."},
    409: {
        "model": ErrorOut,
        "description": "Refused: the version's files do not load or it fails its smoke test (a store that "
        "does not answer is a 503); the old one serves on.",
    },
    503: {
        "model": ErrorOut,
        "description": "The registry, its artifact store or its audit history is unavailable; the models "
        "served stay. Try again after Retry-After seconds when it is sent.",
        "headers": {
            "Retry-After": {
                "description": "Seconds after which the call may succeed (an MLflow server or artifact "
                "store that did not answer).",
                "schema": {"type": "integer"},
            }
        },
    },
}


def describe(service: PredictionService, deployment: Deployment | None = None) -> ModelsResponse:
    current = deployment or service.deployment
    return ModelsResponse(
        name=service.manager.model_name,
        ready=current.champion is not None,
        champion=model_out(current.champion),
        challenger=model_out(current.challenger),
        traffic=TrafficSplit(mode=current.traffic.mode, share=current.traffic.share),
        generation=current.generation,
        last_error=current.last_error,
        degraded=current.degraded,
    )


@router.get("", response_model=ModelsResponse)
async def models(service: ServiceDep) -> ModelsResponse:
    """The champion, the challenger and the traffic split this worker serves."""
    return describe(service)


@router.post("/reload", response_model=ModelsResponse, responses=_ADMIN_ERRORS)
async def reload(service: ServiceDep, _admin: AdminDep) -> ModelsResponse:
    """Load the versions the registry aliases name now; swap only if all load and pass the smoke test."""
    deployment = await anyio.to_thread.run_sync(service.manager.reload)
    return describe(service, deployment)


@router.post("/promote", response_model=ModelsResponse, responses=_ADMIN_ERRORS)
async def promote(body: PromoteRequest, service: ServiceDep, _admin: AdminDep) -> ModelsResponse:
    """Make a version the champion (audited in the registry) after it passed the smoke test, and serve it."""

    def run() -> Deployment:
        deployment, _events = service.manager.promote(
            body.version, who=body.who, why=body.why, force=body.force
        )
        return deployment

    return describe(service, await anyio.to_thread.run_sync(run))


@router.post("/rollback", response_model=ModelsResponse, responses=_ADMIN_ERRORS)
async def rollback(body: RollbackRequest, service: ServiceDep, _admin: AdminDep) -> ModelsResponse:
    """Restore the previous champion from the registry's audit history, and serve it."""

    def run() -> Deployment:
        deployment, _event = service.manager.rollback(who=body.who, why=body.why)
        return deployment

    return describe(service, await anyio.to_thread.run_sync(run))
