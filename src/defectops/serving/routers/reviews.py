"""``/v1/reviews``: a reviewer's answer to "was this right?" about a logged prediction (the commits page's
buttons post here), kept apart from the labels of ``/v1/feedback`` (see :mod:`defectops.predlog.reviews`)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
from fastapi import APIRouter, Query, status

from defectops.predlog import ReviewRecord
from defectops.serving.deps import ReaderDep, ServiceDep

router = APIRouter(prefix="/v1/reviews", tags=["feedback"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        401: {"description": "A read token is configured and none was sent."},
        404: {"description": "No logged prediction has this id."},
    },
)
async def add_review(body: ReviewRecord, service: ServiceDep, _reader: ReaderDep) -> dict[str, Any]:
    """Store the answer with the prediction; every answer is kept, a reviewer's latest is the one counted.

    Who may answer is who may read the pages: anyone when no read token is configured.
    """
    stored = await anyio.to_thread.run_sync(partial(service.log.add_review, body, now=service.clock()))
    return stored.as_dict()


@router.get("", responses={401: {"description": "A read token is configured and none was sent."}})
async def reviews(
    service: ServiceDep,
    _reader: ReaderDep,
    prediction_id: Annotated[list[UUID], Query(min_length=1, max_length=500)],
) -> dict[str, Any]:
    """Every answer about these predictions, in the order received."""
    stored = await anyio.to_thread.run_sync(service.log.reviews, [str(one) for one in prediction_id])
    return {"reviews": [review.as_dict() for review in stored]}
