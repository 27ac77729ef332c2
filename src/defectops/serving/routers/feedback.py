"""``POST /v1/feedback``: late ground truth for a prediction id or a commit."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from defectops.predlog import FeedbackRecord
from defectops.serving.deps import ServiceDep
from defectops.serving.schemas import FeedbackResponse

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": FeedbackResponse, "description": "The same label was already recorded (idempotent)."},
        404: {"description": "No logged prediction has this id."},
    },
)
async def feedback(body: FeedbackRecord, service: ServiceDep, response: Response) -> FeedbackResponse:
    """Record a label (1: defect-inducing, 0: clean) by ``prediction_id``, or by ``repo`` and ``commit_sha``.

    201 when a row was written (a new label, or one that replaces a different earlier label), 200 when the
    same label was already there. Sending it again is harmless.
    """
    outcome = await service.feedback(body)
    if outcome.status == "duplicate":
        response.status_code = status.HTTP_200_OK
    return FeedbackResponse(
        feedback_id=outcome.feedback_id,
        status=outcome.status,
        replaced_feedback_id=outcome.replaced_feedback_id,
        matched_predictions=outcome.matched_predictions,
    )
