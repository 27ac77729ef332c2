"""``--format github``: workflow commands for annotations, plus a markdown job summary.

Each high-risk commit becomes an ``::error`` annotation and each medium-risk commit a ``::warning``, on the
commit's file with the most churn at the first line it added (GitHub shows them in the run and on the pull
request's diff). Low-risk commits get a plain log line only, unless they fail the run: every commit that meets
``--fail-on`` (``any`` with a low ``--threshold`` flags low-band commits too) is an ``::error`` saying why,
without ``file=`` when the commit changed no file. The job summary is the markdown report, appended
to the file ``$GITHUB_STEP_SUMMARY`` names.

Every line written starts with a commit sha, ``defectops:`` or ``::``: text taken from a commit (its subject)
only ever appears escaped inside a command's message, so it cannot start a workflow command of its own.
"""

from __future__ import annotations

from pathlib import Path

from defectops.ci.formats.markdown import render_markdown
from defectops.ci.reasons import describe
from defectops.ci.report import CommitPrediction, PredictionReport
from defectops.training import RiskBand, probability_text, relative_text

_COMMAND = {RiskBand.HIGH: "error", RiskBand.MEDIUM: "warning"}


def escape_data(text: str) -> str:
    """The message part of a workflow command (GitHub's own escaping: ``%``, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (``file=``, ``title=``): also ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation(commit: CommitPrediction, report: PredictionReport, command: str, fails: bool) -> str:
    p = commit.scored.probability
    shown = probability_text(p, report.model.bands)
    title = f"defectops: {commit.band.value} defect risk ({shown})"
    properties = []
    hot = commit.hotspots()
    if hot:
        properties += [f"file={escape_property(hot[0].path)}", f"line={max(1, hot[0].first_line)}"]
    properties.append(f"title={escape_property(title)}")
    reasons = "; ".join(describe(r) for r in commit.scored.reasons)
    relative = relative_text(p, report.model.bands)
    message = (
        f'Commit {commit.short_sha} "{commit.info.subject}": probability {shown}'
        f"{f', {relative}' if relative else ''} (threshold {report.threshold:.3f})."
    )
    if reasons:
        message += f" Reasons: {reasons}."
    for note in commit.notes:
        message += f" Note: {note}."
    if fails and report.fail_on is not None:
        message += f" Fails --fail-on {report.fail_on.value}: {report.fail_condition()}."
    return f"::{command} {','.join(properties)}::{escape_data(message)}"


def render_github(report: PredictionReport) -> list[str]:
    """The lines to print: per commit a log line, and an annotation for the medium and high bands and for
    every commit that fails the run."""
    lines = []
    failing = {c.sha for c in report.failing()}
    for commit in report.commits:
        relative = relative_text(commit.scored.probability, report.model.bands)
        lines.append(
            f"{commit.short_sha} {commit.band.value} "
            f"{probability_text(commit.scored.probability, report.model.bands)}"
            + (f" ({relative})" if relative else "")
        )
        fails = commit.sha in failing
        command = "error" if fails else _COMMAND.get(commit.band)
        if command is not None:
            lines.append(_annotation(commit, report, command, fails))
    from defectops.ci.formats.blocks import block_annotations  # the Terraform blocks (#17), when scored

    lines += block_annotations(report, escape_data, escape_property)
    lines.append(
        f"defectops: {len(report.commits)} commit(s) scored: {report.counts_text()}; "
        f"{len(report.skipped_merges)} merge commit(s) not scored"
    )
    return lines


def append_summary(report: PredictionReport, summary_file: Path) -> None:
    """Append the markdown report to the job summary file (GitHub renders it on the run's page)."""
    with summary_file.open("a", encoding="utf-8") as handle:
        handle.write(render_markdown(report))
