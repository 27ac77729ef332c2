"""The Terraform blocks of a prediction (#17) in the markdown, SARIF and GitHub formats.

Each added or changed block scored by the block-level model is reported on its own lines (the block's span
after the commit), with its band, probability and reasons, and the commit-level risk beside it:
``module.eks_managed_node_group changed: risk high (0.612, 3.0x the block base rate of 20.0%), because ...;
commit 1a2b3c4d5e6f: medium (0.310)``. Markdown lists every block; SARIF results and GitHub annotations are
made for blocks in the medium and high bands (SARIF: ``min_band`` or above), under their own rules
``defectops/<band>-risk-block``.
"""

from __future__ import annotations

from typing import Any

from defectops.ci.block_report import BlockPrediction
from defectops.ci.formats.markdown import escape
from defectops.ci.reasons import describe
from defectops.ci.report import CommitPrediction, PredictionReport
from defectops.training import RiskBand

#: Like the commit rules: minimal (below about half the base rate) last, a note like low.
BLOCK_ORDER = (RiskBand.HIGH, RiskBand.MEDIUM, RiskBand.LOW, RiskBand.MINIMAL)
_LEVEL = {RiskBand.HIGH: "error", RiskBand.MEDIUM: "warning", RiskBand.LOW: "note", RiskBand.MINIMAL: "note"}
BLOCK_FINGERPRINT_KEY = "defectopsBlock/v1"


def block_rule_id(band: RiskBand) -> str:
    return f"defectops/{band.value}-risk-block"


def _code(text: str) -> str:
    """Text inside a code span of a table cell: one line, no backtick, pipes escaped (GFM tables)."""
    return " ".join(text.split()).replace("`", "'").replace("|", "\\|")


def _beside(commit: CommitPrediction) -> str:
    return f"commit {commit.short_sha}: {commit.band.value} ({commit.scored.probability:.3f})"


def block_message(block: BlockPrediction, commit: CommitPrediction) -> str:
    """The block's headline with the commit-level risk beside it."""
    return f"{block.headline()}; {_beside(commit)}"


def block_markdown(report: PredictionReport) -> list[str]:
    """A table of every scored block, or nothing when no commit has one."""
    rows = [(c, b) for c in report.commits for b in c.blocks]
    if not rows:
        return []
    name = rows[0][1].scored.model_name
    lines = [
        "",
        f"#### Terraform blocks (block-level model `{escape(name)}`)",
        "",
        "| Commit | Block | Lines | Change | Risk | Probability | Commit risk | Top reasons |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for commit, block in rows:
        reasons = "; ".join(escape(describe(r)) for r in block.scored.reasons) or "-"
        lines.append(
            f"| `{commit.short_sha}` | `{_code(block.address)}` | "
            f"{escape(block.path)}:{block.first_line}-{block.last_line} | {block.change} | "
            f"{block.band.value} | {block.scored.probability:.3f} | {commit.band.value} "
            f"({commit.scored.probability:.3f}) | {reasons} |"
        )
    return lines


def block_rules() -> list[dict[str, Any]]:
    """The SARIF rules of block results, after the commit rules."""
    rules = []
    for band in BLOCK_ORDER:
        title = f"{band.value.capitalize()} defect risk Terraform block"
        rules.append(
            {
                "id": block_rule_id(band),
                "name": f"{band.value.capitalize()}RiskBlock",
                "shortDescription": {"text": title},
                "fullDescription": {
                    "text": f"A Terraform block the block-level defect model places in the {band.value} "
                    "risk band, among the blocks the commit added or changed."
                },
                "help": {"text": f"{title}: the result lists what raised or lowered its risk most."},
                "defaultConfiguration": {"level": _LEVEL[band]},
                "properties": {"tags": ["defect-prediction", "just-in-time", "terraform"]},
            }
        )
    return rules


def block_results(
    report: PredictionReport, *, first_rule_index: int, min_band: RiskBand
) -> list[dict[str, Any]]:
    """SARIF results of the blocks in ``min_band`` or above, at the block's lines."""
    reported = BLOCK_ORDER[: BLOCK_ORDER.index(min_band) + 1]
    results = []
    for commit in report.commits:
        for block in commit.blocks:
            if block.band not in reported:
                continue
            results.append(
                {
                    "ruleId": block_rule_id(block.band),
                    "ruleIndex": first_rule_index + BLOCK_ORDER.index(block.band),
                    "level": _LEVEL[block.band],
                    "message": {"text": block_message(block, commit)},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": block.path, "uriBaseId": "%SRCROOT%"},
                                "region": {"startLine": block.first_line, "endLine": block.last_line},
                            }
                        }
                    ],
                    "partialFingerprints": {
                        BLOCK_FINGERPRINT_KEY: f"{commit.sha}:{block.path}:{block.address}"
                    },
                    "properties": {
                        "commit": commit.sha,
                        "block": block.address,
                        "change": block.change,
                        "probability": block.scored.probability,
                        "riskBand": block.band.value,
                        "model": block.scored.model_name,
                        "modelVersion": block.scored.model_version,
                        "commitProbability": commit.scored.probability,
                        "commitRiskBand": commit.band.value,
                        "reasons": [r.as_dict() for r in block.scored.reasons],
                        "reasonsText": [describe(r) for r in block.scored.reasons],
                    },
                }
            )
    return results


def block_annotations(report: PredictionReport, escape_data: Any, escape_property: Any) -> list[str]:
    """GitHub workflow commands for the medium and high blocks, on the block's lines."""
    lines = []
    for commit in report.commits:
        for block in commit.blocks:
            command = {RiskBand.HIGH: "error", RiskBand.MEDIUM: "warning"}.get(block.band)
            if command is None:
                continue
            title = f"defectops: {block.address} {block.band.value} risk ({block.scored.probability:.2f})"
            properties = [
                f"file={escape_property(block.path)}",
                f"line={block.first_line}",
                f"endLine={block.last_line}",
                f"title={escape_property(title)}",
            ]
            lines.append(f"::{command} {','.join(properties)}::{escape_data(block_message(block, commit))}")
    return lines
