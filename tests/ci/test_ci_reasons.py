"""Reasons in words: every branch of the phrasing, checked against the exact sentence a reviewer reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defectops.ci.reasons import describe, describe_all, format_value
from defectops.training.models import load_model, make_model
from defectops.training.risk import Reason, score


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (Reason("la", 812.0, 0.84, level="high"), "many lines added (la=812) raised the risk"),
        (Reason("la", 2.0, -0.3, level="low"), "few lines added (la=2) lowered the risk"),
        (Reason("nf", 14.0, 0.2, level="high"), "many files changed (nf=14) raised the risk"),
        (Reason("lt", 35.0, -0.1, level="low"), "small files changed (lt=35) lowered the risk"),
        (
            Reason("entropy", 0.918, 0.1, level="high"),
            "widely spread change across files (entropy=0.92) raised the risk",
        ),
        (
            Reason("entropy", 0.0, -0.1, level="low"),
            "concentrated change across files (entropy=0) lowered the risk",
        ),
        (
            Reason("ndev", 7.0, 0.5, level="high"),
            "many earlier developers of the changed files (ndev=7) raised the risk",
        ),
        (
            Reason("ndev", 234.0, -2.0, level="high"),
            "many earlier developers of the changed files (ndev=234) lowered the risk",
        ),
        (Reason("la", 20.0, 0.3, level="usual"), "lines added (la=20) raised the risk"),
        (Reason("la", 20.0, 0.3), "lines added (la=20) raised the risk"),  # a model that keeps no ranges
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
    reasons = [Reason("la", 812.0, 0.84, level="high"), Reason("ld", 0.0, -0.1, level="low")]
    assert (
        describe_all(reasons)
        == "many lines added (la=812) raised the risk; few lines deleted (ld=0) lowered the risk"
    )
    assert describe_all([]) == ""


def test_the_adjective_follows_the_value_not_the_sign_of_its_contribution(tmp_path: Path) -> None:
    """A model may learn that a metric lowers the risk (on flask, files many developers changed before were
    safer): ``predict`` said "few earlier developers of the changed files (ndev=234) lowered the risk" and
    "many earlier developers of the changed files (ndev=3) raised the risk", as if the risk always grew with
    the value. "many"/"few" now say where the value lies among the model's training commits (above the 75th,
    below the 25th percentile), also after saving and loading the model."""
    rng = np.random.default_rng(0)
    ndev = rng.integers(1, 300, 400).astype(float)
    frame = pd.DataFrame({"ndev": ndev, "la": rng.integers(1, 100, 400).astype(float)})
    y = (rng.uniform(0, 300, 400) > ndev).astype(int)  # the more developers, the fewer defects
    model = make_model("logreg", features=("ndev", "la")).fit(frame, y)
    reloaded = load_model(model.save(tmp_path / "model"))
    commits = pd.DataFrame({"ndev": [280.0, 3.0, 150.0], "la": [50.0, 50.0, 50.0]})
    for fitted in (model, reloaded):
        scored = score(
            fitted, commits, model_name="m", model_version="1", threshold=0.5, bands=fitted.risk_bands(),
            top_k=2,
        )  # fmt: skip
        texts = [next(describe(r) for r in s.reasons if r.feature == "ndev") for s in scored]
        assert texts == [
            "many earlier developers of the changed files (ndev=280) lowered the risk",
            "few earlier developers of the changed files (ndev=3) raised the risk",
            "earlier developers of the changed files (ndev=150) lowered the risk",
        ]


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (
            Reason("tf_attributes", 423.0, 0.4),
            "the attributes in the changed .tf files (tf_attributes=423) raised the risk",
        ),
        (
            Reason("tf_resources_added", 2.0, 0.1),
            "the resource blocks the change added (tf_resources_added=2) raised the risk",
        ),
        (
            Reason("tf_blocks", 0.0, -0.2),
            "the blocks in the changed .tf files (tf_blocks=0) lowered the risk",
        ),
        (
            Reason("code_ccn_delta", -3.0, -0.1),
            "the cyclomatic complexity the change added net (code_ccn_delta=-3) lowered the risk",
        ),
    ],
)
def test_code_and_terraform_metrics_are_said_in_words(reason: Reason, text: str) -> None:
    # Walking terraform-aws-eks, predict's reasons read "tf_attributes=423 raised the risk" next to
    # "the author's experience (exp=230) lowered the risk": the Terraform metrics were the unexplained ones.
    assert describe(reason) == text


def test_every_model_input_has_words() -> None:
    from defectops.data import BLOCK_FEATURES, FEATURE_SETS

    for feature in (*FEATURE_SETS["all"], *BLOCK_FEATURES):
        text = describe(Reason(feature, 1.0, 0.5))
        assert not text.startswith(f"{feature}="), text
