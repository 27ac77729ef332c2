"""Reviewer feedback: a person's answer to "was this prediction right?", kept apart from labels.

Why a table of its own and not a row of ``feedback``: a label (from SZZ or posted to ``/v1/feedback``) is the
ground truth realised performance, the gate and the rollback watch are computed on; a reviewer's opinion is
not. Had it gone into ``feedback`` (keyed by prediction id) it would take precedence over the SZZ label of
the same commit in every window (see :func:`defectops.predlog.reads.read_window`) and silently become the
truth. Here it is stored with the prediction (its id is a foreign key), every answer is kept (append-only;
the latest answer of a reviewer is the one that counts), and monitoring shows it beside the labels as
reviewer feedback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from defectops.errors import NotFoundError
from defectops.predlog.engine import Store
from defectops.predlog.records import aware, canonical_uuid, checked_prediction_id
from defectops.predlog.schema import predictions_table, reviews_table

__all__ = ["ReviewRecord", "StoredReview", "Verdict", "read_reviews", "record_review"]

Verdict = Literal["right", "wrong"]


class ReviewRecord(BaseModel):
    """One answer to "was this right?" for a logged prediction (the body of ``POST /v1/reviews``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prediction_id: str = Field(json_schema_extra={"format": "uuid"})
    verdict: Verdict
    reviewer: str | None = Field(default=None, min_length=1, max_length=128)
    comment: str | None = Field(default=None, max_length=2000)

    @field_validator("prediction_id", mode="before")
    @classmethod
    def _check_id(cls, value: object) -> str:
        return canonical_uuid(value, "prediction_id")


@dataclass(frozen=True, slots=True)
class StoredReview:
    """One stored answer, with what the prediction said when the reviewer judged it."""

    review_id: int
    prediction_id: str
    verdict: str
    reviewer: str | None
    comment: str | None
    received_at: datetime
    risk_label: int
    risk_band: str

    def as_dict(self) -> dict[str, object]:
        return {
            "review_id": self.review_id,
            "prediction_id": self.prediction_id,
            "verdict": self.verdict,
            "reviewer": self.reviewer,
            "comment": self.comment,
            "received_at": self.received_at.isoformat(),
            "risk_label": self.risk_label,
            "risk_band": self.risk_band,
        }


def record_review(store: Store, item: ReviewRecord, *, now: datetime) -> StoredReview:
    """Append one answer; :class:`NotFoundError` when the prediction was never logged."""
    received_at = aware(now, "now")
    pr = predictions_table
    with store.transaction(write=True) as connection:
        prediction = connection.execute(
            sa.select(pr.c.risk_label, pr.c.risk_band).where(pr.c.prediction_id == item.prediction_id)
        ).first()
        if prediction is None:
            raise NotFoundError(f"no logged prediction with id {item.prediction_id}")
        review_id = connection.execute(
            reviews_table.insert()
            .values(
                prediction_id=item.prediction_id,
                verdict=item.verdict,
                reviewer=item.reviewer,
                comment=item.comment,
                received_at=received_at,
            )
            .returning(reviews_table.c.review_id)
        ).scalar_one()
    return StoredReview(
        review_id=int(review_id),
        prediction_id=item.prediction_id,
        verdict=item.verdict,
        reviewer=item.reviewer,
        comment=item.comment,
        received_at=received_at,
        risk_label=int(prediction.risk_label),
        risk_band=str(prediction.risk_band),
    )


def read_reviews(store: Store, prediction_ids: Sequence[str]) -> list[StoredReview]:
    """Every answer about these predictions, in the order received."""
    ids = [checked_prediction_id(value) for value in prediction_ids]
    if not ids:
        return []
    rv, pr = reviews_table, predictions_table
    with store.transaction(write=False) as connection:
        rows = connection.execute(
            sa.select(rv, pr.c.risk_label, pr.c.risk_band)
            .join(pr, pr.c.prediction_id == rv.c.prediction_id)
            .where(rv.c.prediction_id.in_(ids))
            .order_by(rv.c.received_at, rv.c.review_id)
        ).all()
    return [
        StoredReview(
            review_id=int(row.review_id),
            prediction_id=row.prediction_id,
            verdict=row.verdict,
            reviewer=row.reviewer,
            comment=row.comment,
            received_at=row.received_at,
            risk_label=int(row.risk_label),
            risk_band=str(row.risk_band),
        )
        for row in rows
    ]
