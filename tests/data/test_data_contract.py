"""The feature contract: one dtype per metric, and every older spelling of a value read back as that type."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from defectops.data import CONTRACT, METRIC_NAMES, RICH_FEATURES, normalise_frame, normalise_inputs


def test_the_contract_covers_every_metric_as_float64_with_its_range() -> None:
    assert tuple(CONTRACT) == (*METRIC_NAMES, *RICH_FEATURES)
    assert {spec.dtype for spec in CONTRACT.values()} == {"float64"}
    assert [name for name, spec in CONTRACT.items() if spec.flag] == ["fix"]
    grows = {name for name, spec in CONTRACT.items() if spec.grows_with_age}
    assert grows == {"lt", "ndev", "age", "nuc", "exp", "rexp", "sexp", "file_fixes", "dir_fixes"}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("fix", True, 1.0),
        ("fix", False, 0.0),
        ("fix", np.bool_(True), 1.0),
        ("fix", 1, 1.0),
        ("fix", 0.0, 0.0),
        ("la", 12, 12.0),
        ("la", np.int64(7), 7.0),
        ("rexp", np.float32(0.5), 0.5),
        ("la", None, None),
        ("la", float("nan"), None),
        ("la", pd.NA, None),
    ],
)
def test_normalise_turns_every_spelling_into_one_float(
    name: str, value: object, expected: float | None
) -> None:
    result = CONTRACT[name].normalise(value)
    assert result == expected
    assert result is None or type(result) is float


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("fix", 0.5, "fix is a flag"),
        ("fix", 2, "fix is a flag"),
        ("la", -1, "la must be at least 0"),
        ("la", float("inf"), "la must be finite"),
        ("la", "12", "la must be a number"),
    ],
)
def test_out_of_contract_values_are_refused_by_name(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CONTRACT[name].normalise(value)


def test_normalise_inputs_keeps_other_inputs_and_drops_missing_metrics() -> None:
    out = normalise_inputs({"fix": True, "la": 3, "ld": None, "message": "Fix it"})
    assert out == {"fix": 1.0, "la": 3.0, "message": "Fix it"}
    assert type(out["la"]) is float


def test_a_window_mixing_old_bool_and_float_flags_reads_as_float64() -> None:
    # What a prediction-log window held before the contract: fix as true (commits/score) and 0.0 (predict).
    window = pd.DataFrame(
        {
            "fix": pd.Series([True, 0.0, False, 1.0, None], dtype=object),
            "la": pd.Series([1, 2, 3, None, 5], dtype="Int64"),
            "flagged": pd.Series([True, False, True, True, False], dtype="boolean"),
            "message": ["a", "b", "c", "d", "e"],
        }
    )
    out = normalise_frame(window)
    assert out["fix"].tolist()[:4] == [1.0, 0.0, 0.0, 1.0]
    assert np.isnan(out["fix"].iloc[4])
    assert str(out["fix"].dtype) == "float64"
    assert str(out["la"].dtype) == "float64"
    assert out["la"].tolist()[:3] == [1.0, 2.0, 3.0]
    assert np.isnan(out["la"].iloc[3])
    assert str(out["flagged"].dtype) == "boolean"  # not a contract metric: left alone
    assert out["message"].tolist() == ["a", "b", "c", "d", "e"]
    assert window["fix"].dtype == object  # the input is not modified
    mined = pd.DataFrame({"fix": pd.Series([True, False], dtype="boolean")})
    assert normalise_frame(mined)["fix"].tolist() == [1.0, 0.0]
