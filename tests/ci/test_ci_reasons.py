"""Reasons in words: every branch of the phrasing, checked against the exact sentence a reviewer reads."""

from __future__ import annotations

import pytest

from defectops.ci.reasons import describe, describe_all, format_value
from defectops.training.risk import Reason


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (Reason("la", 812.0, 0.84), "many lines added (la=812) raised the risk"),
        (Reason("la", 2.0, -0.3), "few lines added (la=2) lowered the risk"),
        (Reason("nf", 14.0, 0.2), "many files changed (nf=14) raised the risk"),
        (Reason("lt", 35.0, -0.1), "small files changed (lt=35) lowered the risk"),
        (Reason("entropy", 0.918, 0.1), "widely spread change across files (entropy=0.92) raised the risk"),
        (Reason("entropy", 0.0, -0.1), "concentrated change across files (entropy=0) lowered the risk"),
        (Reason("ndev", 7.0, 0.5), "many earlier developers of the changed files (ndev=7) raised the risk"),
        (Reason("exp", 340.0, 0.2), "the author's experience (exp=340) raised the risk"),
        (Reason("rexp", 1.5, -0.2), "the author's recent experience (rexp=1.5) lowered the risk"),
        (Reason("age", 12.25, 0.3), "the time since the files were last changed (age=12.25) raised the risk"),
        (Reason("fix", 1.0, 0.4), "a bug fix (fix=1) raised the risk"),
        (Reason("fix", 0.0, -0.4), "not a bug fix (fix=0) lowered the risk"),
        (Reason("msg:crash", 0.41, 0.3), "the word 'crash' in the message raised the risk"),
        (Reason("path:tests/", 0.2, -0.3), "the path part 'tests/' lowered the risk"),
        (Reason("cc_max", 17.0, 0.0), "cc_max=17 did not change the risk"),
    ],
)
def test_describe(reason: Reason, text: str) -> None:
    assert describe(reason) == text


def test_format_value() -> None:
    assert format_value(812.0) == "812"
    assert format_value(0.9183) == "0.92"  # two decimals, trailing zeros dropped
    assert format_value(12.5) == "12.5"
    assert format_value(-3.0) == "-3"
    assert format_value(float("inf")) == "inf"


def test_describe_all_joins_in_order() -> None:
    reasons = [Reason("la", 812.0, 0.84), Reason("ld", 0.0, -0.1)]
    assert (
        describe_all(reasons)
        == "many lines added (la=812) raised the risk; few lines deleted (ld=0) lowered the risk"
    )
    assert describe_all([]) == ""
