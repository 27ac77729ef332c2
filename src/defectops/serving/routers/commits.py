"""``POST /v1/commits/score``: mine commits of a configured repository and score them."""

from __future__ import annotations

from fastapi import APIRouter, Response

from defectops.serving.deps import PredictDep, ServiceDep
from defectops.serving.schemas import CommitScoreRequest, CommitScoreResponse

router = APIRouter(prefix="/v1/commits", tags=["predictions"])


@router.post(
    "/score",
    response_model=CommitScoreResponse,
    responses={
        404: {"description": "Unknown repository id."},
        413: {"description": "The range holds more commits than the batch limit."},
        503: {"description": "No model loaded, or the repository's block-level champion does not load."},
    },
)
async def score_commits(body: CommitScoreRequest, service: ServiceDep, _role: PredictDep) -> Response:
    """Mine a sha or a BASE..HEAD range with the incremental miner state, then score every non-merge commit.

    ``repo`` is an id from the service's settings (DEFECTOPS_SERVE_REPOSITORIES), never a path.
    """
    return Response(await service.score_commits(body), media_type="application/json")
