"""``GET /metrics``: Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Response

from defectops.serving.deps import ServiceDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(service: ServiceDep) -> Response:
    """Requests, latencies, predictions by model version and risk band, scores, log commits, and the
    gauges of the latest monitoring result (drift, realized and estimated performance)."""
    body, content_type = service.metrics.exposition()
    monitoring = service.monitoring_gauges.exposition()
    if monitoring:
        body = body + b"\n" + monitoring.encode("utf-8")
    return Response(body, media_type=content_type)
