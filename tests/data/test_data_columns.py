"""The metric names are defined once (defectops.data.columns); the places that must declare each metric by
hand (a dataclass, a Pandera schema, a pydantic model) are checked against that definition here."""

from __future__ import annotations

import dataclasses

from defectops.data.columns import CHURN, FEATURES, METRIC_NAMES, RICH_FEATURES
from defectops.data.mined import COMMITS_SCHEMA
from defectops.data.schemas import EFFORT
from defectops.mining.metrics import ChangeMetrics
from defectops.serving.schemas import NUMERIC_FIELDS, ChangeRecord


def test_metric_names_are_the_features_then_churn() -> None:
    assert len(FEATURES) == 14
    assert (*FEATURES, "churn") == METRIC_NAMES
    assert EFFORT == CHURN == METRIC_NAMES[-1]


def test_hand_written_declarations_follow_the_names() -> None:
    assert tuple(f.name for f in dataclasses.fields(ChangeMetrics)) == (*METRIC_NAMES, *RICH_FEATURES)
    columns = list(COMMITS_SCHEMA.columns)
    mined = [*METRIC_NAMES, *RICH_FEATURES]
    assert columns[-len(mined) :] == mined
    assert set(NUMERIC_FIELDS) <= set(ChangeRecord.model_fields)
