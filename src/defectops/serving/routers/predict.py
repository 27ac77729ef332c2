"""``POST /v1/predict``: score change metrics sent as JSON.

The body is parsed by pydantic's own JSON parser (``model_validate_json``) instead of FastAPI's
``json.loads`` + validation: the same rules and error locations, about twice as fast on a 1,000-record batch.
The request schema is still documented in OpenAPI (see :func:`defectops.serving.app.create_app`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from defectops.serving.deps import PredictDep, ServiceDep
from defectops.serving.schemas import PredictRequest, PredictResponse

router = APIRouter(prefix="/v1", tags=["predictions"])

#: The request body as OpenAPI shows it (the schema itself is added to the components by the app).
BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
    }
}


@router.post(
    "/predict",
    response_model=PredictResponse,
    openapi_extra=BODY_DOC,
    responses={
        413: {"description": "More records than the batch limit, or a body above the size limit."},
        422: {"description": "Unknown field, wrong type, NaN/infinity, negative or missing metric."},
        503: {"description": "No model loaded, or the prediction log is unavailable."},
    },
)
async def predict(request: Request, service: ServiceDep, _role: PredictDep) -> Response:
    """Score one or many changes: probability, risk label and band, model version, prediction id, reasons.

    Body: ``{"records": [{metric: value, ...}, ...], "top_k": 5}`` (see ``PredictRequest``). Every
    prediction is committed to the prediction log before the answer is sent.
    """
    try:
        body = PredictRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    return Response(await service.predict(body.records, body.top_k), media_type="application/json")
