"""The block stage's line in ``defectops run``'s summary and report: a block model its gate refused says why,
and what the commits are scored with now (found walking terraform-aws-eks: the line ended in "gate failed",
and nothing said that the ROC-AUC floor refused it or that no block risks would be served)."""

from __future__ import annotations

from defectops.pipeline import BlockStage, block_line

NAME = "defectops-0123456789ab-blocks"


def test_a_refused_first_block_model_names_the_failed_criterion_and_that_no_block_risks_are_served() -> None:
    stage = BlockStage(
        NAME, rows=5751, links=40, link_stats={}, version=1, gate="failed",
        gate_reason="failed: roc_auc_floor: ROC-AUC 0.6379 < 0.65", promoted=False, champion_version=None,
    )  # fmt: skip
    assert block_line(stage) == (
        f"{NAME} v1: gate failed (roc_auc_floor: ROC-AUC 0.6379 < 0.65); "
        "no block champion, so commits are scored without block risks"
    )


def test_a_refused_block_challenger_says_the_block_champion_stays() -> None:
    stage = BlockStage(
        NAME, rows=10, links=1, link_stats={}, version=3, gate="not run",
        gate_reason="fewer than 20 commits with labelled blocks were made since the block champion was trained",
        promoted=False, champion_version=2,
    )  # fmt: skip
    assert block_line(stage) == (
        f"{NAME} v3: gate not run (fewer than 20 commits with labelled blocks were made since the block "
        "champion was trained); the block champion stays v2"
    )


def test_a_promoted_block_model_line_is_unchanged() -> None:
    stage = BlockStage(
        NAME, rows=10, links=1, link_stats={}, version=1, gate="passed",
        gate_reason="passed: all 3 criteria met", promoted=True, champion_version=1,
    )  # fmt: skip
    assert block_line(stage) == f"{NAME} v1: gate passed"
