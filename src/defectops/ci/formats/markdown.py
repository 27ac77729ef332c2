"""``--format markdown``: a report fit for a pull-request comment or a job summary.

Plain words, no emoji: the band is written out. Everything taken from a commit (subject, reasons naming words
of its message) is escaped, so a subject cannot break the table, inject HTML or mention (notify) people.
The first line is an HTML comment marker a bot can use to find and update its earlier comment.
"""

from __future__ import annotations

import math

from defectops.ci.reasons import describe
from defectops.ci.report import PredictionReport
from defectops.training import describe_starter, multiple_text, probability_text

MARKER = "<!-- defectops:predict -->"

_BACKSLASHED = set("\\`*_[]|~")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "@": "&#64;", "&": "&amp;"}


def escape(text: str) -> str:
    """Text safe inside a markdown table cell: one line, markdown and HTML characters neutralised."""
    out = []
    for ch in " ".join(text.split()):
        if ch in _BACKSLASHED:
            out.append("\\" + ch)
        else:
            out.append(_ENTITIES.get(ch, ch))
    return "".join(out)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_markdown(report: PredictionReport) -> str:
    """The report as GitHub-flavoured markdown, ending with a newline."""
    model = report.model
    rate = f"{model.bands.base_rate:.1%}" if math.isfinite(model.bands.base_rate) else "unknown"
    lines = [
        MARKER,
        f"### Defect risk: {report.counts_text()}",
        "",
        f"Model `{escape(model.name)}` version {escape(model.version)}, threshold {report.threshold:.3f}; "
        f"risk bands: {model.bands.describe()}.",
        "",
    ]
    if model.cross_project:
        lines += [
            f"> **Cross-project model.** {escape(describe_starter(model.model))}: its scores rank this "
            "repository's commits against its own history, but it has not learnt from its defects.",
            "",
        ]
    if report.commits:
        lines += [
            f"| Commit | Subject | Risk | Probability | vs base rate ({rate}) | Top reasons |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for commit in report.commits:
            reasons = "; ".join(escape(describe(r)) for r in commit.scored.reasons) or "-"
            lines.append(
                f"| `{commit.short_sha}` | {escape(commit.info.subject) or '-'} | {commit.band.value} | "
                f"{probability_text(commit.scored.probability, model.bands)} | "
                f"{multiple_text(commit.scored.relative_risk)} | "
                f"{reasons} |"
            )
    else:
        lines.append("No commit to score.")
    from defectops.ci.formats.blocks import block_markdown  # the Terraform blocks (#17), when scored

    lines += block_markdown(report)
    noted = [c for c in report.commits if c.notes]
    if noted:
        lines += ["", "Notes:"]
        lines += [f"- `{c.short_sha}`: {escape(note)}" for c in noted for note in c.notes]
    if report.skipped_merges:
        shas = ", ".join(f"`{sha[:12]}`" for sha in report.skipped_merges)
        lines += [
            "",
            f"Not scored: {_plural(len(report.skipped_merges), 'merge commit')} ({shas}); their changes are "
            "scored in the commits they merge.",
        ]
    if report.fail_on is not None:
        failing = report.failing()
        verdict = (
            f"{_plural(len(failing), 'commit')} reached it: " + ", ".join(f"`{c.short_sha}`" for c in failing)
            if failing
            else "no commit reached it"
        )
        lines += ["", f"Fail-on `{report.fail_on.value}`: {verdict}."]
    return "\n".join(lines) + "\n"
