"""``POST /v1/feedback``: late ground truth for a prediction id or a commit, written by a token's role."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from defectops.predlog import FeedbackRecord
from defectops.serving.deps import FeedbackRoleDep, ServiceDep
from defectops.serving.schemas import ErrorOut, FeedbackRequest, FeedbackResponse

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {
            "description": "The label was written; `pending` when no prediction of the commit is logged yet "
            "(it labels them once they are)."
        },
        200: {"model": FeedbackResponse, "description": "The same label was already recorded (idempotent)."},
        401: {"model": ErrorOut, "description": "No bearer token."},
        403: {"model": ErrorOut, "description": "A token that may not write labels."},
        404: {"model": ErrorOut, "description": "No logged prediction has this id."},
        409: {
            "model": ErrorOut,
            "description": "The commit's label comes from SZZ mining; the API cannot change it.",
        },
    },
)
async def feedback(
    body: FeedbackRequest, role: FeedbackRoleDep, service: ServiceDep, response: Response
) -> FeedbackResponse:
    """Record a label (1: defect-inducing, 0: clean) by ``prediction_id``, or by ``repo`` and ``commit_sha``.

    Needs the feedback (or admin) token; the label is stored with its writer, ``api:<role>``. 201 when a row
    was written (a new label, or one that replaces a different earlier label), 200 when the same label was
    already there. Sending it again is harmless. A label SZZ mining wrote is never replaced from here (409).
    A label by commit is accepted before the commit is scored: it is kept, answered with
    ``matched_predictions: 0`` and ``pending: true``, and labels the commit's predictions once they are logged
    under the same ``repo`` and ``commit_sha``.
    """
    try:
        record = FeedbackRecord.model_validate(
            {**body.model_dump(exclude_none=True), "source": f"api:{role}"}
        )
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    outcome = await service.feedback(record)
    if outcome.status == "duplicate":
        response.status_code = status.HTTP_200_OK
    return FeedbackResponse(
        feedback_id=outcome.feedback_id,
        status=outcome.status,
        replaced_feedback_id=outcome.replaced_feedback_id,
        matched_predictions=outcome.matched_predictions,
        pending=outcome.matched_predictions == 0,  # by id there is always the prediction itself (else 404)
    )
