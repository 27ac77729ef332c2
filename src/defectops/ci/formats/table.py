"""``--format table``: a Rich table for a terminal (the default)."""

from __future__ import annotations

from rich.table import Table

from defectops.ci.reasons import format_value
from defectops.ci.report import PredictionReport
from defectops.training import multiple_text, probability_text

_STYLE = {"high": "bold red", "medium": "yellow", "low": "green", "minimal": "blue"}


def _version(version: str) -> str:
    return f"v{version}" if version.isdigit() else f"({version})"


def render_table(report: PredictionReport) -> Table:
    """One row per scored commit: sha, band, probability, subject and the top reasons."""
    model = report.model
    title = (
        f"defect risk · {model.name} {_version(model.version)} · "
        + ("CROSS-PROJECT starter (trained on other projects) · " if model.cross_project else "")
        + f"threshold {format_value(round(report.threshold, 4))} · "
        f"{model.bands.describe()}"
    )
    table = Table(title=title, title_justify="left")
    for column in ("commit", "risk", "probability", "subject", "top reasons"):
        table.add_column(column, overflow="fold")
    for commit in report.commits:
        band = commit.band.value
        table.add_row(
            commit.short_sha,
            f"[{_STYLE[band]}]{band}[/]",
            f"{probability_text(commit.scored.probability, model.bands)} "
            f"({multiple_text(commit.scored.relative_risk)})",
            commit.info.subject,
            "\n".join([*commit.reasons_text, *(f"[dim]note: {note}[/]" for note in commit.notes)]),
        )
    return table
