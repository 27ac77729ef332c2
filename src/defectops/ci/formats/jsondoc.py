"""``--format json``: the whole report as one JSON document (also what ``--json`` consumers parse)."""

from __future__ import annotations

from typing import Any

from defectops.ci.report import PredictionReport


def render_json(report: PredictionReport) -> dict[str, Any]:
    """The report as plain JSON types: model, counts per band, each commit with its reasons and files."""
    return report.as_dict()
