"""``GET /metrics``: Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Response

from defectops.serving.deps import ServiceDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(service: ServiceDep) -> Response:
    """Requests, latencies, predictions by model version and risk band, scores, log commits."""
    body, content_type = service.metrics.exposition()
    return Response(body, media_type=content_type)
