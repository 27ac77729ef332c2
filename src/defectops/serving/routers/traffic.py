"""``PUT /v1/traffic``: the challenger's share (canary) or shadow scoring (admin)."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter

from defectops.serving.deployment import Traffic
from defectops.serving.deps import AdminDep, ServiceDep
from defectops.serving.routers.models import describe
from defectops.serving.schemas import ModelsResponse, TrafficSplit

router = APIRouter(prefix="/v1", tags=["models"])


@router.put(
    "/traffic",
    response_model=ModelsResponse,
    responses={
        401: {"description": "No bearer token."},
        403: {"description": "Wrong bearer token."},
        409: {"description": "canary or shadow needs a loaded challenger."},
    },
)
async def set_traffic(body: TrafficSplit, service: ServiceDep, _admin: AdminDep) -> ModelsResponse:
    """``canary``: the challenger answers ``share`` of the records; ``shadow``: it scores ``share`` of them
    beside the champion (logged with ``served=false``, not returned); ``off``: champion only.

    Records are assigned by a hash of their prediction id, so the choice is reproducible from the log.
    """
    traffic = Traffic(mode=body.mode, share=body.share)
    deployment = await anyio.to_thread.run_sync(service.manager.set_traffic, traffic)
    return describe(service, deployment)
