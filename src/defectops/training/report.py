"""The main job's HTML report: one self-contained page that opens offline and stays small.

Plots are inline SVG made by matplotlib (curves thinned to at most a few hundred points); no script, no
external asset, no raw training data. Only the scored recent commits are listed, with their top reasons.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from defectops.console import shorten_subject
from defectops.training.risk import RiskBands, Scored, multiple_text, probability_text

FloatArray = npt.NDArray[np.float64]
_MAX_POINTS = 300


@dataclass(frozen=True)
class RecentCommit:
    """A recent commit as the report shows it."""

    scored: Scored
    author: str
    time: datetime
    subject: str


def _thin(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    if len(x) <= _MAX_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, _MAX_POINTS).astype(int))
    return x[keep], y[keep]


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    import matplotlib.pyplot as plt

    plt.close(figure)
    text = buffer.getvalue()
    return text[text.find("<svg") :]


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller files
    return plt.subplots(figsize=(4.2, 3.2))


def roc_svg(y: FloatArray, score: FloatArray) -> str:
    from sklearn.metrics import roc_curve

    fig, ax = _figure()
    fpr, tpr, _ = roc_curve(y, score)
    fpr, tpr = _thin(fpr, tpr)
    ax.plot(fpr, tpr, color="#1f5fa8")
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    return _svg(fig)


def pr_svg(y: FloatArray, score: FloatArray) -> str:
    from sklearn.metrics import precision_recall_curve

    fig, ax = _figure()
    precision, recall, _ = precision_recall_curve(y, score)
    recall, precision = _thin(recall[::-1].astype(float), precision[::-1].astype(float))
    ax.plot(recall, precision, color="#1f5fa8")
    ax.axhline(float(np.mean(y)), color="#999", linestyle=":")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    return _svg(fig)


def calibration_svg(y: FloatArray, probability: FloatArray, bins: int = 10) -> str:
    fig, ax = _figure()
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    predicted, observed, sizes = [], [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            predicted.append(float(probability[mask].mean()))
            observed.append(float(y[mask].mean()))
            sizes.append(int(mask.sum()))
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":")
    ax.scatter(predicted, observed, s=[10 + 40 * s / max(sizes) for s in sizes], color="#1f5fa8")
    ax.plot(predicted, observed, color="#1f5fa8")
    ax.set(xlabel="predicted probability", ylabel="observed defect rate", title="Calibration")
    return _svg(fig)


def effort_svg(y: FloatArray, ranking_score: FloatArray, effort: FloatArray) -> str:
    """Share of defect-inducing changes found against share of churn inspected (model, optimal, random)."""
    fig, ax = _figure()
    total_effort = float(effort.sum()) or 1.0
    total_defects = float(y.sum()) or 1.0

    def curve(order: npt.NDArray[np.intp]) -> tuple[FloatArray, FloatArray]:
        x = np.concatenate([[0.0], np.cumsum(effort[order]) / total_effort])
        r = np.concatenate([[0.0], np.cumsum(y[order]) / total_defects])
        return _thin(x, r)

    model = np.lexsort((effort, -ranking_score))
    density = np.where(effort > 0, y / np.maximum(effort, 1e-12), np.where(y > 0, np.inf, 0.0))
    optimal = np.lexsort((effort, -density))
    ax.plot(*curve(model), color="#1f5fa8", label="model")
    ax.plot(*curve(optimal), color="#2b8a3e", linestyle="--", label="optimal")
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":", label="random")
    ax.axvline(0.2, color="#c92a2a", linewidth=0.8)
    ax.set(xlabel="share of churn inspected", ylabel="share of defects found", title="Effort-aware")
    ax.legend(loc="lower right", fontsize=7)
    return _svg(fig)


def importance_svg(importance: Sequence[tuple[str, float]], top: int = 14, rows: int | None = None) -> str:
    """The ``top`` features by mean absolute contribution, the caption saying how many of how many and over
    which rows: the plot showed 14 bars of a 27-feature model without a word that 13 were left out."""
    fig, ax = _figure()
    items = list(importance)[:top][::-1]
    ax.barh([name for name, _ in items], [value for _, value in items], color="#1f5fa8")
    over = "" if rows is None else f" over the latest {rows:,} commits"
    ax.set(
        xlabel=f"mean |contribution| (log-odds){over}",
        title=f"Feature importance: top {len(items)} of {len(importance)} features",
    )
    return _svg(fig)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:1em}.grid>div{flex:0 0 auto}.grid svg{width:400px;height:auto}
.high{color:#c92a2a;font-weight:600}.medium{color:#b35c00}.low{color:#2b8a3e}.minimal{color:#546e7a}.muted{color:#666}
"""


#: What each evaluation key means, shown beside it in the report (docs/evaluation.md has the formulas).
METRIC_MEANINGS: dict[str, str] = {
    "roc_auc": "ROC-AUC: chance a defect-inducing commit scores above a clean one",
    "pr_auc": "PR-AUC: average precision over all thresholds",
    "f1": "F1 at the model's threshold",
    "mcc": "Matthews correlation at the threshold (-1 to 1, 0 is chance)",
    "g_mean": "geometric mean of recall on both classes at the threshold",
    "brier": "Brier score: mean squared error of the probabilities (lower is better)",
    "recall_at_20_effort": "share of defect-inducing commits found in the riskiest 20% of changed lines",
    "effort_at_20_recall": "share of changed lines reviewed, riskiest first, to find 20% of the defects",
    "popt": "Popt: effort-aware ranking quality against the optimal order (1 is optimal)",
    "ifa": "initial false alarms: clean commits reviewed before the first defect-inducing one",
}


def held_out_meanings(threshold: float | None) -> dict[str, str]:
    """:data:`METRIC_MEANINGS` with the held-out threshold written into the metrics taken at it.

    Why: the F1 here is at the threshold of the model fitted on the earlier commits, the gate's at the
    registered model's (refitted on all of them); without the numbers the two F1s of one window looked
    contradictory.
    """
    if threshold is None:
        return METRIC_MEANINGS
    at = f"at threshold {threshold:.3f}"
    return {
        **METRIC_MEANINGS,
        "f1": f"F1 {at}, the one the model fitted on the earlier commits chose (the gate's F1 is at the "
        "registered model's threshold)",
        "mcc": f"Matthews correlation {at} (-1 to 1, 0 is chance)",
        "g_mean": f"geometric mean of recall on both classes {at}",
    }


def _rows(mapping: Mapping[str, Any], meanings: Mapping[str, str] = METRIC_MEANINGS) -> str:
    return "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td>"
        f"<td class=muted>{html.escape(meanings.get(str(k), ''))}</td></tr>"
        for k, v in mapping.items()
    )


def _fmt(value: Any) -> str:
    """Counts as integers (``174``, not ``174.0000``), other numbers with four decimals or grouped digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _reason_text(scored: Scored) -> str:
    parts = [
        f"{r.feature}={_fmt(r.value)} {r.direction} risk ({r.contribution:+.2f})" for r in scored.reasons[:3]
    ]
    return "; ".join(parts)


def render_plots(
    *,
    y_true: FloatArray,
    probability: FloatArray,
    effort: FloatArray,
    importance: Sequence[tuple[str, float]],
    importance_rows: int | None = None,
) -> dict[str, str]:
    """The report's plots as SVG documents, by file stem (also logged with the training run);
    ``importance_rows`` is how many commits the importance was averaged over."""
    return {
        "roc": roc_svg(y_true, probability),
        "precision_recall": pr_svg(y_true, probability),
        "calibration": calibration_svg(y_true, probability),
        "effort_aware": effort_svg(y_true, probability / np.maximum(effort, 1.0), effort),
        "feature_importance": importance_svg(importance, rows=importance_rows),
    }


def _rate_text(bands: RiskBands | None) -> str:
    """`` (12.0%)``: the base rate beside the bands' column (empty when unknown)."""
    if bands is None or not math.isfinite(bands.base_rate):
        return ""
    return f" ({bands.base_rate:.1%})"


def _bands_text(bands: RiskBands | None) -> str:
    """What the bands mean for this model (its base rate), for the line above the table."""
    if bands is None:
        return "No champion scored these commits."
    return (
        f"Risk bands: {bands.describe()}; minimal is below the low cut, clearly safer than a usual commit, "
        "and low below the base rate, no riskier than a usual commit."
    )


def render(
    *,
    title: str,
    summary: Mapping[str, Any],
    metrics: Mapping[str, float],
    plots: Mapping[str, str],
    recent: Sequence[RecentCommit],
    generated_at: datetime,
    bands: RiskBands | None = None,
    note: str = "",
    validation: str = "",
    threshold: float | None = None,
) -> str:
    """The whole report page; ``note`` (e.g. that a cross-project starter made the predictions) is shown
    above everything else, and the held-out section is left out when there are no ``metrics``; ``validation``
    is the HTML of the validation section (:func:`defectops.training.validation_section`), shown after it;
    ``threshold`` is the one the held-out F1 was taken at (:func:`held_out_meanings`)."""
    recent_rows = "".join(
        "<tr>"
        f"<td><code>{html.escape((c.scored.sha or '')[:12])}</code></td>"
        f"<td>{c.time:%Y-%m-%d}</td><td>{html.escape(c.author)}</td>"
        f"<td>{html.escape(shorten_subject(c.subject, 80))}</td>"
        f"<td class='{c.scored.band.value}'>{probability_text(c.scored.probability, bands)} "
        f"{c.scored.band.value}</td>"
        f"<td>{html.escape(multiple_text(c.scored.relative_risk))}</td>"
        f"<td>{html.escape(_reason_text(c.scored))}</td>"
        "</tr>"
        for c in sorted(recent, key=lambda c: -c.scored.probability)
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p class='muted'>generated {generated_at:%Y-%m-%d %H:%M} UTC by defectops</p>"
        + (f"<p class='note'><strong>{html.escape(note)}</strong></p>" if note else "")
        + f"<h2>Summary</h2><table>{_rows(summary)}</table>"
        + (
            "<h2>Held-out evaluation (later commits, chronological split)</h2>"
            f"<table>{_rows(metrics, held_out_meanings(threshold))}</table>"
            if metrics
            else ""
        )
        + f"<div class='grid'>{''.join(f'<div>{p}</div>' for p in plots.values())}</div>"
        + validation
        + "<h2>Riskiest recent commits</h2>"
        f"<p class='muted'>{html.escape(_bands_text(bands))}</p>"
        "<table><tr><th>commit</th><th>date</th><th>author</th><th>subject</th><th>risk</th>"
        f"<th>x base rate{_rate_text(bands)}</th>"
        f"<th>top reasons</th></tr>{recent_rows}</table>"
        "</body></html>\n"
    )
