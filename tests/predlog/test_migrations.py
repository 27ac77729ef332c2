"""A prediction log created with three risk bands keeps working after ``minimal`` was added; both backends.

The old log is made the way the earlier version made it: the same tables with the three-band CHECK
constraint, rows written with plain SQL (a prediction, its label and a review), before any migration ran.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from defectops.predlog import FeedbackRecord, PredictionLog, PredictionRecord, ReviewRecord
from defectops.predlog.schema import metadata, predictions_table

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
SHA = "c" * 40
OLD_CHECK = "risk_band IN ('low', 'medium', 'high')"


def _old_schema() -> sa.MetaData:
    old = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(old)
    predictions = old.tables["predictions"]
    for constraint in list(predictions.constraints):
        if constraint.name == "ck_predictions_risk_band":
            predictions.constraints.remove(constraint)
    predictions.append_constraint(sa.CheckConstraint(OLD_CHECK, name="ck_predictions_risk_band"))
    return old


def _row(prediction_id: str, band: str, score: float) -> dict[str, object]:
    return {
        "prediction_id": prediction_id,
        "repo": "acme/app",
        "commit_sha": SHA,
        "created_at": T0,
        "model_name": "jit",
        "model_version": "1",
        "served": True,
        "shadow_of": None,
        "inputs": {"la": 3},
        "score": score,
        "threshold": 0.5,
        "risk_label": 0,
        "risk_band": band,
    }


def _old_log(url: str) -> str:
    """An old log with one prediction (``low``), its label and a review; returns the prediction id."""
    old = _old_schema()
    engine = sa.create_engine(url)
    prediction_id = str(uuid.uuid4())
    try:
        with engine.begin() as connection:
            old.create_all(connection)
            connection.execute(old.tables["predictions"].insert(), [_row(prediction_id, "low", 0.03)])
            connection.execute(
                old.tables["feedback"].insert(),
                [
                    {
                        "prediction_id": prediction_id,
                        "label": 1,
                        "label_time": T0 + timedelta(days=30),
                        "source": "szz",
                        "received_at": T0 + timedelta(days=30),
                    }
                ],
            )
            connection.execute(
                old.tables["reviews"].insert(),
                [{"prediction_id": prediction_id, "verdict": "wrong", "received_at": T0 + timedelta(days=2)}],
            )
        # The old constraint really is the three-band one: "minimal" is refused.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(old.tables["predictions"].insert(), [_row(str(uuid.uuid4()), "minimal", 0.01)])
    finally:
        engine.dispose()
    return prediction_id


def test_a_three_band_log_is_migrated_and_keeps_its_rows(log_url: str) -> None:
    old_id = _old_log(log_url)
    with PredictionLog.from_url(log_url) as log:
        stored = log.get(old_id)
        assert (stored.risk_band, stored.score, stored.inputs) == ("low", 0.03, {"la": 3})
        new = PredictionRecord(
            prediction_id=str(uuid.uuid4()),
            created_at=T0 + timedelta(hours=1),
            model_name="jit",
            model_version="2",
            served=True,
            inputs={"la": 1},
            score=0.02,
            threshold=0.5,
            risk_label=0,
            risk_band="minimal",
            repo="acme/app",
            commit_sha="d" * 40,
        )
        assert log.record([new]) == 1
        window = log.window(T0, T0 + timedelta(days=1))
        assert list(window["risk_band"]) == ["low", "minimal"]
        assert list(window["label"].astype("float")) == [1.0, pytest.approx(float("nan"), nan_ok=True)]
        assert [r.verdict for r in log.reviews([old_id])] == ["wrong"]
        # Labels and reviews still point at the rebuilt table: a new review and a new label join.
        log.add_review(
            ReviewRecord(prediction_id=new.prediction_id, verdict="right"), now=T0 + timedelta(days=3)
        )
        log.add_feedback(FeedbackRecord(label=0, prediction_id=new.prediction_id), now=T0 + timedelta(days=3))
        with pytest.raises(sa.exc.IntegrityError), log.engine.begin() as connection:
            connection.execute(predictions_table.insert(), [_row(str(uuid.uuid4()), "severe", 0.5)])
        with pytest.raises(sa.exc.IntegrityError), log.engine.begin() as connection:
            connection.execute(  # the foreign keys are enforced again after the SQLite rebuild
                metadata.tables["reviews"].insert(),
                [{"prediction_id": str(uuid.uuid4()), "verdict": "right", "received_at": T0}],
            )
        indexes = {index["name"] for index in sa.inspect(log.engine).get_indexes("predictions")}
        assert {index.name for index in predictions_table.indexes} <= indexes
    # Opening it again is a no-op: the rows and the constraint stay.
    with PredictionLog.from_url(log_url) as log:
        assert {r.risk_band for r in log.by_commit("acme/app", SHA)} == {"low"}
        assert log.get(new.prediction_id).risk_band == "minimal"


def test_a_new_log_accepts_every_band(log: PredictionLog) -> None:
    for i, band in enumerate(("minimal", "low", "medium", "high")):
        log.record(
            [
                PredictionRecord(
                    prediction_id=str(uuid.uuid4()),
                    created_at=T0 + timedelta(minutes=i),
                    model_name="jit",
                    model_version="1",
                    served=True,
                    inputs={},
                    score=0.1 * i,
                    threshold=0.5,
                    risk_label=0,
                    risk_band=band,
                )
            ]
        )
    assert list(log.window(T0, T0 + timedelta(hours=1))["risk_band"]) == ["minimal", "low", "medium", "high"]
