"""What a worker posts to GitHub: a check run (or commit status) with the same content as the CI formats.

The check run's summary is the markdown report (:func:`defectops.ci.render_markdown`) and its annotations
are the SARIF results (:func:`defectops.ci.render_sarif`) turned into GitHub annotations on the changed
files, so a push scored by a worker reads exactly like ``defectops predict --format markdown|sarif`` in CI.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from defectops.ci import PredictionReport, render_markdown, render_sarif
from defectops.training import RiskBand, relative_text

_LEVEL = {"error": "failure", "warning": "warning", "note": "notice"}
#: GitHub's limits on a check run's output.
_SUMMARY_LIMIT = 65535
_TITLE_LIMIT = 255
_STATUS_DESCRIPTION_LIMIT = 140


def external_id(report_key: str) -> str:
    """The check run's ``external_id``: how a retried event finds the run an earlier attempt posted."""
    return f"defectops:{report_key}"


def single(report: PredictionReport, sha: str) -> PredictionReport:
    """The report of one of its commits (the check run of that commit)."""
    return dataclasses.replace(
        report, commits=tuple(c for c in report.commits if c.sha == sha), skipped_merges=(), notes=()
    )


def check_annotations(report: PredictionReport, information_uri: str | None = None) -> list[dict[str, Any]]:
    """The SARIF results of the report as check-run annotations (medium and high risk commits)."""
    sarif = render_sarif(report, information_uri=information_uri) if information_uri else render_sarif(report)
    found = []
    for result in sarif["runs"][0]["results"]:
        location = result["locations"][0]["physicalLocation"]
        line = int(location["region"]["startLine"])
        found.append(
            {
                "path": location["artifactLocation"]["uri"],
                "start_line": line,
                "end_line": line,
                "annotation_level": _LEVEL[result["level"]],
                "title": f"{result['properties']['riskBand']} defect risk "
                f"(commit {str(result['properties']['commit'])[:12]})",
                "message": result["message"]["text"],
            }
        )
    return found


def headline(report: PredictionReport) -> str:
    """One line: the worst band and its probability."""
    if not report.commits:
        return "Defect risk: no commit to score"
    worst = max(report.commits, key=lambda c: c.scored.probability)
    relative = relative_text(worst.scored.probability, report.model.bands)
    beside = f", {relative}" if relative else ""
    if len(report.commits) == 1:
        return f"Defect risk: {worst.band.value} (probability {worst.scored.probability:.3f}{beside})"
    return f"Defect risk: {report.counts_text()} (highest {worst.scored.probability:.3f}{beside})"


def conclusion(report: PredictionReport) -> str:
    """``neutral`` when a commit is in the high band (worth a look, not a failed build), else ``success``."""
    return "neutral" if any(c.band is RiskBand.HIGH for c in report.commits) else "success"


def check_run_body(
    report: PredictionReport, *, name: str, head_sha: str, key: str, information_uri: str | None = None
) -> dict[str, Any]:
    """The ``POST /repos/{owner}/{repo}/check-runs`` body of a completed check run."""
    return {
        "name": name,
        "head_sha": head_sha,
        "external_id": external_id(key),
        "status": "completed",
        "conclusion": conclusion(report),
        "output": {
            "title": headline(report)[:_TITLE_LIMIT],
            "summary": render_markdown(report)[:_SUMMARY_LIMIT],
            "annotations": check_annotations(report, information_uri),
        },
    }


def status_body(report: PredictionReport, *, context: str) -> dict[str, Any]:
    """The ``POST /repos/{owner}/{repo}/statuses/{sha}`` body: ``failure`` for the high band."""
    high = any(c.band is RiskBand.HIGH for c in report.commits)
    return {
        "state": "failure" if high else "success",
        "description": headline(report)[:_STATUS_DESCRIPTION_LIMIT],
        "context": context,
    }
