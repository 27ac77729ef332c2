"""``GET /health/live`` and ``GET /health/ready``: for orchestrators' probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from defectops.serving.deps import ServiceDep
from defectops.serving.schemas import HealthOut

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=HealthOut)
async def live() -> HealthOut:
    """The process answers HTTP (restart it if not)."""
    return HealthOut(status="live")


@router.get("/ready", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def ready(service: ServiceDep) -> JSONResponse:
    """A champion model is loaded and smoke-tested (send traffic only then).

    ``degraded`` (still 200, so traffic flows): the registry's champion does not load and the last champion
    of the audit history that does answers instead; ``/metrics`` shows ``defectops_degraded 1``."""
    deployment = service.deployment
    champion = deployment.champion
    if champion is None:
        body = HealthOut(status="not ready", detail=deployment.last_error or "no model loaded")
        return JSONResponse(body.model_dump(), status_code=503)
    if deployment.degraded is not None:
        body = HealthOut(
            status="degraded",
            detail=deployment.degraded,
            degraded=True,
            model_name=champion.name,
            model_version=champion.version,
        )
        return JSONResponse(body.model_dump())
    body = HealthOut(status="ready", model_name=champion.name, model_version=champion.version)
    return JSONResponse(body.model_dump())
