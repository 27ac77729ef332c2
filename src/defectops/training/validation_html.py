"""The run report's validation section (issue #20): intervals, group warnings and stability as HTML tables.

Kept apart from :mod:`defectops.training.report` so the page's layout and the validation's content change
independently; the section is plain tables (no script), like the rest of the page.
"""

from __future__ import annotations

import html
import math

from defectops.training.stability import Spread
from defectops.training.validation import Interval
from defectops.training.validation_run import ValidationReport


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _interval(interval: Interval, digits: int = 3) -> str:
    if interval.lower is None or interval.upper is None:
        return f"{_num(interval.value, digits)} (interval undefined)"
    return f"{_num(interval.value, digits)} [{interval.lower:.{digits}f}, {interval.upper:.{digits}f}]"


#: The one line a report without stability shows instead of the section (the refits make it slow).
STABILITY_NOT_COMPUTED = (
    "Stability over quarters and seeds: not computed in this run (it refits the model about a dozen times); "
    "`defectops run --stability` or `defectops validate` computes it."
)


def _spread(label: str, spread: Spread | None, empty: str) -> str:
    if spread is None:
        return f"<tr><th>{html.escape(label)}</th><td colspan=4>{html.escape(empty)}</td></tr>"
    return (
        f"<tr><th>{html.escape(label)}</th><td>{spread.count}</td><td>{spread.minimum:.3f} .. "
        f"{spread.maximum:.3f}</td><td>{spread.std:.3f}</td><td>{spread.mean_step:.3f}</td></tr>"
    )


def validation_section(report: ValidationReport) -> str:
    """The HTML of the validation section of the run report."""
    intervals = report.intervals
    metric_rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(_interval(i))}</td></tr>"
        for name, i in intervals.intervals.items()
    )
    group_rows = "".join(
        f"<tr{' class=high' if g.warning else ''}><td>{html.escape(g.dimension)}</td>"
        f"<td>{html.escape(g.group)}</td><td>{g.n}</td><td>{g.defective}</td>"
        f"<td>{_num(g.recall, 2)} vs {_num(g.recall_rest, 2)}</td>"
        f"<td>{html.escape(_interval(g.recall_diff, 2))}</td>"
        f"<td>{_num(g.fpr, 2)} vs {_num(g.fpr_rest, 2)}</td>"
        f"<td>{html.escape(_interval(g.fpr_diff, 2))}</td></tr>"
        for g in report.groups
    )
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report.warnings) or "<li>none</li>"
    protocol = "".join(
        f"<li><strong>{html.escape(k)}</strong>: {html.escape(str(v))}</li>"
        for k, v in report.protocol.items()
    )
    return (
        "<h2>Validation beyond one number</h2>"
        f"<p class=muted>Held-out window {html.escape(report.window[0][:10])} .. "
        f"{html.escape(report.window[1][:10])}: {intervals.n} commits, "
        f"{intervals.defective} defect-inducing; "
        f"threshold {report.threshold:.3f}.</p>"
        f"<h3>{intervals.confidence:.0%} bootstrap intervals</h3><table>{metric_rows}</table>"
        f"<h3>Errors by group</h3><ul>{warnings}</ul>"
        "<table><tr><th>dimension</th><th>group</th><th>commits</th><th>defective</th><th>recall vs rest</th>"
        "<th>difference</th><th>FPR vs rest</th><th>difference</th></tr>"
        f"{group_rows}</table>" + _stability(report) + f"<h3>Protocol</h3><ul>{protocol}</ul>"
    )


def _stability(report: ValidationReport) -> str:
    """The stability tables when the quarters and seeds were refitted, else one line on how to get them (a
    table of "no usable window" rows read as if the refits had been tried and had failed)."""
    if not report.stability_computed:
        return f"<p class=muted>{html.escape(STABILITY_NOT_COMPUTED)}</p>"
    quarter_rows = "".join(
        f"<tr><td>{w.start} .. {w.end}</td><td>{w.train_rows}</td><td>{w.test_rows}</td>"
        f"<td>{w.defective}</td>"
        f"<td>{_num(w.roc_auc)}</td><td>{w.threshold:.3f}</td></tr>"
        for w in report.windows
    )
    no_quarter = "no quarter with enough commits and defect-inducing ones"
    no_seed = "not refitted: the held-out window or its training part lacks one of the classes"
    return (
        "<h3>Stability</h3><table><tr><th></th><th>count</th><th>range</th><th>std</th>"
        "<th>mean step</th></tr>"
        + _spread("ROC-AUC over quarters", report.window_auc, no_quarter)
        + _spread("threshold over quarters", report.window_threshold, no_quarter)
        + _spread("ROC-AUC over seeds", report.seed_auc, no_seed)
        + _spread("threshold over seeds", report.seed_threshold, no_seed)
        + "</table>"
        + (
            "<table><tr><th>quarter</th><th>train</th><th>test</th><th>defective</th><th>ROC-AUC</th>"
            f"<th>threshold</th></tr>{quarter_rows}</table>"
            if quarter_rows
            else ""
        )
    )
