"""The API's change records carry the code and Terraform metrics (#17): a champion trained with
`run --features terraform` is scored over /v1/predict with its tf_ inputs, which its OpenAPI requires."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from defectops.data import FEATURE_SETS, TERRAFORM_FEATURES
from defectops.serving.answers import records_batch
from defectops.serving.schemas import NUMERIC_FIELDS, ChangeRecord, require_metrics


def test_records_accept_terraform_and_code_metrics_with_their_signs() -> None:
    record = ChangeRecord(la=3.0, tf_resources_added=1, tf_attributes_delta=-2, code_nloc_delta=-5)
    # By hand: the matrix picks the named inputs in the asked order; an input not sent is NaN (a 422 later).
    matrix = records_batch([record]).matrix(["tf_resources_added", "la", "tf_attributes_delta", "tf_blocks"])
    assert matrix[0, :3].tolist() == [1.0, 3.0, -2.0]
    assert np.isnan(matrix[0, 3])
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        ChangeRecord(tf_resources=-1)  # a count is never negative
    with pytest.raises(ValidationError, match="Input should be a valid number"):
        ChangeRecord(tf_blocks="3")  # strict, as every metric
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ChangeRecord(tf_parse_errors=0)  # bookkeeping, never a model input
    assert set(FEATURE_SETS["all"]) <= set(NUMERIC_FIELDS)


def test_the_openapi_of_a_terraform_champion_requires_its_tf_inputs() -> None:
    document = {"components": {"schemas": {"ChangeRecord": ChangeRecord.model_json_schema()}}}
    features = list(FEATURE_SETS["terraform"])
    record = require_metrics(document, features)["components"]["schemas"]["ChangeRecord"]
    assert record["required"] == features  # 14 change + 37 Terraform metrics, in the model's order
    assert len(record["required"]) == 51
    delta = record["properties"]["tf_attributes_delta"]
    assert delta["type"] == "number"
    assert "minimum" not in delta
    assert record["properties"][TERRAFORM_FEATURES[1]]["minimum"] == 0
