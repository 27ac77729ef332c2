"""The Terraform blocks of a prediction (#17) in markdown, SARIF and GitHub, from a hand-built report."""

from __future__ import annotations

import dataclasses

import pytest

from defectops.ci.block_report import BlockPrediction
from defectops.ci.changes import ChangedFile, CommitInfo
from defectops.ci.formats.github import render_github
from defectops.ci.formats.markdown import render_markdown
from defectops.ci.formats.sarif import render_sarif
from defectops.ci.model_source import ModelSource
from defectops.ci.report import CommitPrediction, PredictionReport
from defectops.training.models import JITModel
from defectops.training.risk import Reason, RiskBand, RiskBands, Scored

SHA = "1111111111112222222222223333333333334444"


def _scored(probability: float, band: RiskBand, name: str, *reasons: Reason) -> Scored:
    return Scored(
        probability=probability,
        risk=probability >= 0.5,
        band=band,
        threshold=0.5,
        model_name=name,
        model_version="2",
        reasons=reasons,
        sha=SHA,
        base_rate=0.2,
    )


@pytest.fixture
def report(tiny_model: JITModel) -> PredictionReport:
    source = ModelSource(
        model=tiny_model,
        name="jit",
        version="7",
        threshold=0.5,
        bands=RiskBands(medium=0.2, high=0.4, base_rate=0.2),
        origin="models:/jit/7",
    )
    info = CommitInfo(
        sha=SHA,
        subject="Grow the node group",
        author_name="Bob",
        author_email="bob@example.com",
        files=(ChangedFile("main.tf", None, "M", 3, 1, False, 7),),
    )
    commit = CommitPrediction(scored=_scored(0.31, RiskBand.MEDIUM, "jit"), info=info, features={"la": 3.0})
    blocks = (
        BlockPrediction(
            "main.tf", "module.eks_managed_node_group", "changed", 6, 9,
            _scored(0.62, RiskBand.HIGH, "jit-blocks", Reason("blk_changes", 4.0, 0.8)),
        ),
        # An address with a backtick and a pipe (labels are free text): it must not break the table.
        BlockPrediction("main.tf", "aws_s3_bucket.a`b|c", "added", 1, 4, _scored(0.05, RiskBand.LOW, "jit-blocks")),
    )  # fmt: skip
    commit = dataclasses.replace(commit, blocks=blocks)
    return PredictionReport(repo="/r", revisions=("HEAD",), model=source, threshold=0.5, commits=(commit,))


def test_markdown_lists_every_block_beside_the_commit(report: PredictionReport) -> None:
    text = render_markdown(report)
    assert "#### Terraform blocks (block-level model `jit-blocks`)" in text
    assert (
        "| `111111111111` | `module.eks_managed_node_group` | main.tf:6-9 | changed | high | 0.620 | "
        "medium (0.310) | the block's earlier changes (blk\\_changes=4) raised the risk |"
    ) in text
    assert (
        "| `111111111111` | `aws_s3_bucket.a'b\\|c` | main.tf:1-4 | added | low | 0.050 | medium (0.310) | - |"
        in text
    )


def test_github_annotates_medium_and_high_blocks_on_their_lines(report: PredictionReport) -> None:
    lines = render_github(report)
    blocks = [line for line in lines if "endLine=" in line]
    # GitHub workflow commands escape % as %25
    assert blocks == [
        "::error file=main.tf,line=6,endLine=9,title=defectops%3A module.eks_managed_node_group high risk "
        "(0.62)::module.eks_managed_node_group changed: risk high (0.620, 3.1x the block base rate of 20.0%25), "
        "because the block's earlier changes (blk_changes=4) raised the risk; commit 111111111111: medium (0.310)"
    ]


def test_sarif_results_on_block_lines_with_their_own_rules(report: PredictionReport) -> None:
    run = render_sarif(report)["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules[4:] == [  # after the four commit rules
        "defectops/high-risk-block",
        "defectops/medium-risk-block",
        "defectops/low-risk-block",
        "defectops/minimal-risk-block",
    ]
    (block,) = [r for r in run["results"] if r["ruleId"].endswith("-block")]  # low is below min_band
    assert block["ruleIndex"] == 4
    assert block["level"] == "error"
    assert block["locations"][0]["physicalLocation"]["region"] == {"startLine": 6, "endLine": 9}
    assert block["partialFingerprints"] == {
        "defectopsBlock/v1": f"{SHA}:main.tf:module.eks_managed_node_group"
    }
    assert block["properties"]["commitRiskBand"] == "medium"
    assert block["message"]["text"].startswith(
        "module.eks_managed_node_group changed: risk high (0.620, 3.1x the block base rate of 20.0%)"
    )


def test_block_reasons_in_words() -> None:
    from defectops.ci.reasons import describe

    assert describe(Reason("blk_added", 1.0, 0.5)) == "a new block (blk_added=1) raised the risk"
    assert (
        describe(Reason("blk_kind_modules", 0.0, -0.2))
        == "not a module block (blk_kind_modules=0) lowered the risk"
    )
    assert (
        describe(Reason("blk_la", 40.0, 0.3, level="high"))
        == "many lines added in the block (blk_la=40) raised the risk"
    )
    assert (
        describe(Reason("blk_age", 12.5, -0.1)) == "the block's age in days (blk_age=12.5) lowered the risk"
    )


def test_sarif_min_band_minimal_reaches_the_blocks_too(report: PredictionReport) -> None:
    run = render_sarif(report, min_band=RiskBand.MINIMAL)["runs"][0]
    bands = [r["properties"]["riskBand"] for r in run["results"] if r["ruleId"].endswith("-block")]
    assert bands == ["high", "low"]  # every block of the fixture, down to the low one
