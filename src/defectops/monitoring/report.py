"""A monitoring result as typed records, and its three renderings: JSON, an HTML page, Prometheus gauges.

Why typed records: the CLI, the service and the self-healing loop read the same result, and the loop stores
it as evidence for its decisions, so its shape must be explicit and versioned (``schema_version``). The HTML
report is for people: self-contained (inline SVG, no scripts, no network), small, and made only from
aggregates (test statistics, histograms, chunk means) so it never leaks a logged row. The gauges are what
the service exposes on ``/metrics``.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from defectops.errors import InputError
from defectops.monitoring.drift_records import FeatureDrift, MultivariateDrift, StreamDrift
from defectops.monitoring.newcomers import NewcomerShift, newcomer_status
from defectops.monitoring.performance import (
    EstimatedPerformance,
    LabelFreeProxies,
    RealizedPerformance,
    ScoreSummary,
)
from defectops.monitoring.trend import TrendAdjustment

State = Literal["ok", "drift"]
SCHEMA_VERSION = 1


class MonitoringResult(BaseModel):
    """Everything one monitoring run found, for one reference and one window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    generated_at: datetime
    state: State
    reasons: list[str]
    n_reference: int
    n_window: int
    features: list[FeatureDrift]
    skipped_columns: dict[str, str]
    prediction: FeatureDrift | None
    multivariate: MultivariateDrift | None
    streams: list[StreamDrift]
    proxies_reference: LabelFreeProxies | None
    proxies_window: LabelFreeProxies
    realized: RealizedPerformance
    estimated: EstimatedPerformance
    notes: list[str]
    settings: dict[str, Any]
    #: An alarm is what may act (retrain, page someone): performance below the baseline, the score
    #: distribution moving, or many features drifting at once, on a window large enough to judge. Drift of a
    #: few features is diagnosis only (``state`` "drift", ``reasons``), see docs/monitoring.md.
    alarm: bool = False
    alarm_reasons: list[str] = Field(default_factory=list)
    trends: list[TrendAdjustment] = Field(default_factory=list)
    #: Material drift of the score or of many feature groups in this check: an alarm once found in
    #: ``alarm_drift_checks`` consecutive checks (see defectops.monitoring.alarms); the next check reads it.
    drift_signal: list[str] = Field(default_factory=list)
    #: Consecutive checks with a drift signal, this one included.
    drift_checks: int = 0
    #: The share of changes by newcomers against the reference (a new team of authors); None without exp.
    newcomers: NewcomerShift | None = None

    @property
    def drifted_features(self) -> list[str]:
        """Names of the features whose drift was detected."""
        return [f.feature for f in self.features if f.drift_detected]


def to_json(result: MonitoringResult) -> str:
    """The result as one JSON document (NaN never appears: missing values are null)."""
    return result.model_dump_json(indent=2)


def from_json(text: str) -> MonitoringResult:
    """Read a result written by :func:`to_json` (e.g. stored evidence of a heal decision)."""
    from pydantic import ValidationError

    try:
        return MonitoringResult.model_validate_json(text)
    except ValidationError as exc:
        raise InputError(f"not a monitoring result: {exc.errors()[0]['msg']}") from None


# ---------------------------------------------------------------------------------------------------------
# Prometheus


class Gauge(BaseModel):
    """One gauge sample: metric name, label set and value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    labels: dict[str, str]
    value: float


#: Every gauge :func:`prometheus_gauges` can emit: name -> (help text, label names). The service can declare
#: them up front (e.g. prometheus_client.Gauge(name, help, labelnames)) and set values after each run.
PROMETHEUS_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "defectops_monitor_drift_detected": ("1 if the last monitoring run found drift, else 0.", ()),
    "defectops_monitor_alarm": (
        "1 if the last monitoring run raised an alarm (performance, score, or many features), else 0.",
        (),
    ),
    "defectops_monitor_last_run_timestamp_seconds": ("When the last monitoring run happened (Unix).", ()),
    "defectops_monitor_window_predictions": ("Logged predictions in the monitored window.", ()),
    "defectops_monitor_reference_rows": ("Rows in the reference snapshot.", ()),
    "defectops_feature_drift_score": (
        "Feature drift on a common scale: 1 is the threshold of the test used.",
        ("feature",),
    ),
    "defectops_feature_drift_statistic": ("Raw statistic of the feature drift test.", ("feature", "test")),
    "defectops_feature_drift_detected": ("1 if the feature drifted, else 0.", ("feature",)),
    "defectops_feature_psi": ("Population stability index of the feature.", ("feature",)),
    "defectops_prediction_drift_score": ("Drift of the model score: 1 is the threshold.", ()),
    "defectops_prediction_drift_detected": ("1 if the score distribution drifted, else 0.", ()),
    "defectops_prediction_psi": ("Population stability index of the score.", ()),
    "defectops_multivariate_reconstruction_error": ("Mean PCA reconstruction error of the window.", ()),
    "defectops_multivariate_band_lower": ("Lower edge of the reference reconstruction-error band.", ()),
    "defectops_multivariate_band_upper": ("Upper edge of the reference reconstruction-error band.", ()),
    "defectops_multivariate_drift_detected": ("1 if the reconstruction error left the band, else 0.", ()),
    "defectops_stream_drift_detected": (
        "1 if the streaming detector flagged a change in the window, else 0.",
        ("detector", "target"),
    ),
    "defectops_positive_rate": ("Share of predictions at or above the decision threshold.", ("window",)),
    "defectops_high_risk_share": ("Share of predictions at or above the high-risk threshold.", ("window",)),
    "defectops_score_mean": ("Mean model score.", ("window",)),
    "defectops_matured_labels": ("Window predictions whose label has matured.", ()),
    "defectops_matured_defective_labels": ("Matured labels that are defective.", ()),
    "defectops_model_performance": (
        "Model performance, realized on matured labels or estimated by CBPE.",
        ("metric", "source"),
    ),
    "defectops_calibration_error": ("Expected calibration error of the labelled reference.", ()),
    "defectops_newcomer_share": ("Share of changes by newcomers (exp below the setting).", ("window",)),
    "defectops_newcomer_signal": ("1 if the newcomers' share signals a new team of authors, else 0.", ()),
}


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


def prometheus_gauges(result: MonitoringResult) -> list[Gauge]:
    """The result as gauge samples (names follow Prometheus conventions; unknown values are left out)."""
    out: list[Gauge] = []

    def add(name: str, value: float | None, **labels: str) -> None:
        if name not in PROMETHEUS_METRICS:
            raise KeyError(name)  # a programming error: every gauge must be in the catalogue
        if value is not None and math.isfinite(value):
            out.append(Gauge(name=name, labels=labels, value=float(value)))

    add("defectops_monitor_drift_detected", _flag(result.state == "drift"))
    add("defectops_monitor_alarm", _flag(result.alarm))
    add("defectops_monitor_last_run_timestamp_seconds", result.generated_at.timestamp())
    add("defectops_monitor_window_predictions", float(result.n_window))
    add("defectops_monitor_reference_rows", float(result.n_reference))
    for feature in result.features:
        add("defectops_feature_drift_score", feature.drift_score, feature=feature.feature)
        if feature.test is not None:
            add(
                "defectops_feature_drift_statistic",
                feature.statistic,
                feature=feature.feature,
                test=feature.test,
            )
        add("defectops_feature_drift_detected", _flag(feature.drift_detected), feature=feature.feature)
        add("defectops_feature_psi", feature.psi, feature=feature.feature)
    if result.prediction is not None:
        add("defectops_prediction_drift_score", result.prediction.drift_score)
        add("defectops_prediction_drift_detected", _flag(result.prediction.drift_detected))
        add("defectops_prediction_psi", result.prediction.psi)
    if result.multivariate is not None:
        mv = result.multivariate
        add("defectops_multivariate_reconstruction_error", mv.window_error)
        add("defectops_multivariate_band_lower", mv.band_lower)
        add("defectops_multivariate_band_upper", mv.band_upper)
        add("defectops_multivariate_drift_detected", _flag(mv.drift_detected))
    for stream in result.streams:
        add(
            "defectops_stream_drift_detected",
            _flag(stream.drift_detected),
            detector=stream.detector,
            target=stream.target,
        )
    for window, proxies in (("reference", result.proxies_reference), ("current", result.proxies_window)):
        if proxies is not None:
            add("defectops_positive_rate", proxies.positive_rate, window=window)
            add("defectops_high_risk_share", proxies.high_risk_share, window=window)
            add("defectops_score_mean", proxies.score.mean, window=window)
    add("defectops_matured_labels", float(result.realized.n_matured))
    add("defectops_matured_defective_labels", float(result.realized.n_positive))
    realized = result.realized
    for metric, value in (
        ("roc_auc", realized.roc_auc),
        ("f1", realized.f1),
        ("precision", realized.precision),
        ("recall", realized.recall),
        ("brier", realized.brier),
        (f"recall_at_{round(realized.effort_share * 100)}_effort", realized.recall_at_effort),
    ):
        add("defectops_model_performance", value, metric=metric, source="realized")
    estimated = result.estimated
    for metric, value in (
        ("roc_auc", estimated.roc_auc),
        ("f1", estimated.f1),
        ("precision", estimated.precision),
        ("recall", estimated.recall),
        ("brier", estimated.brier),
    ):
        add("defectops_model_performance", value, metric=metric, source="estimated")
    add("defectops_calibration_error", estimated.reference_calibration_error)
    if result.newcomers is not None:
        add("defectops_newcomer_share", result.newcomers.share_reference, window="reference")
        add("defectops_newcomer_share", result.newcomers.share_window, window="current")
        add("defectops_newcomer_signal", _flag(result.newcomers.signal))
    return out


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_prometheus(gauges: Iterable[Gauge]) -> str:
    """Prometheus text exposition format (0.0.4) of gauge samples, grouped by metric with HELP and TYPE."""
    by_name: dict[str, list[Gauge]] = {}
    for gauge in gauges:
        by_name.setdefault(gauge.name, []).append(gauge)
    lines: list[str] = []
    for name, samples in by_name.items():
        help_text = PROMETHEUS_METRICS.get(name, ("", ()))[0]
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for sample in samples:
            labels = ",".join(f'{key}="{_escape_label(value)}"' for key, value in sample.labels.items())
            lines.append(f"{name}{{{labels}}} {sample.value!r}" if labels else f"{name} {sample.value!r}")
    return "\n".join(lines) + "\n"


def exposition(result: MonitoringResult) -> str:
    """The result as Prometheus text, ready to be published for the service's ``/metrics``."""
    return format_prometheus(prometheus_gauges(result))


# ---------------------------------------------------------------------------------------------------------
# HTML


def _fmt(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}g}"


def _svg(figure: Any, salt: str) -> str:
    """A matplotlib figure as inline SVG text (fonts as text, no date, ids salted per figure)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=72)


def _drift_plot(features: Sequence[FeatureDrift]) -> str | None:
    tested = [f for f in features if f.drift_score is not None]
    if not tested:
        return None
    figure = _figure(7.0, 0.3 * len(tested) + 1.0)
    axes = figure.add_subplot()
    names = [f.feature for f in tested]
    scores = [min(float(f.drift_score or 0.0), 10.0) for f in tested]
    colors = ["#c0392b" if f.drift_detected else "#2e86c1" for f in tested]
    axes.barh(range(len(tested)), scores, color=colors)
    axes.set_yticks(range(len(tested)), names)
    axes.invert_yaxis()
    axes.axvline(1.0, color="black", linestyle="--", linewidth=1)
    axes.set_xlabel("drift score (1 = threshold, capped at 10)")
    return _svg(figure, "defectops-drift")


def _score_plot(reference: ScoreSummary | None, window: ScoreSummary) -> str:
    figure = _figure(7.0, 2.6)
    axes = figure.add_subplot()
    edges = window.histogram_edges
    for summary, label, color in ((reference, "reference", "#7f8c8d"), (window, "window", "#2e86c1")):
        if summary is None or summary.n == 0:
            continue
        shares = [count / summary.n for count in summary.histogram_counts]
        shares.append(shares[-1])  # so the last bin's step reaches 1.0
        axes.step(edges, shares, where="post", label=label, color=color)
        axes.fill_between(edges, shares, step="post", alpha=0.15, color=color)
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("score")
    axes.set_ylabel("share of predictions")
    axes.legend(loc="upper right")
    return _svg(figure, "defectops-score")


def _multivariate_plot(mv: MultivariateDrift) -> str:
    figure = _figure(7.0, 2.6)
    axes = figure.add_subplot()
    ref = mv.reference_chunk_errors
    win = mv.window_chunk_errors
    axes.plot(range(len(ref)), ref, marker=".", color="#7f8c8d", label="reference chunks")
    axes.plot(range(len(ref), len(ref) + len(win)), win, marker=".", color="#2e86c1", label="window chunks")
    axes.axhspan(mv.band_lower, mv.band_upper, color="#27ae60", alpha=0.12, label="reference band")
    axes.axhline(mv.window_error, color="#c0392b", linewidth=1, label="window mean")
    axes.set_xlabel(f"chunk of {mv.chunk_size} rows")
    axes.set_ylabel("reconstruction error")
    axes.legend(loc="upper left", fontsize=8)
    return _svg(figure, "defectops-pca")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:60em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.drift{color:#c0392b;font-weight:bold}.ok{color:#1e8449;font-weight:bold}
.badge{padding:.2em .6em;border-radius:.3em;color:#fff}
.badge.drift{background:#c0392b;color:#fff}.badge.ok{background:#1e8449;color:#fff}
svg{max-width:100%;height:auto}
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], raw_cells: bool = False) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if raw_cells else html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict(flag: bool) -> str:
    return '<span class="drift">drift</span>' if flag else '<span class="ok">ok</span>'


def render_html(result: MonitoringResult, context: Sequence[str] = ()) -> str:
    """A self-contained HTML report (inline CSS and SVG, no scripts, no external resources).

    ``context``: what was monitored, in the lines ``defectops monitor`` prints above its summary (the model
    and version, the period, the reference, the traffic hint); without them a report of the workspace's model
    did not say which model or period it was about.
    """
    esc = html.escape
    parts: list[str] = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>defectops monitoring report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>defectops monitoring report</h1>",
        f"<p>State: <span class='badge {result.state}'>{esc(result.state)}</span> &middot; generated "
        f"{esc(result.generated_at.isoformat())} &middot; reference {result.n_reference} rows &middot; "
        f"window {result.n_window} predictions</p>",
    ]
    if context:
        parts.append("<ul class='context'>" + "".join(f"<li>{esc(line)}</li>" for line in context) + "</ul>")
    alarm = "alarm" if result.alarm else "no alarm"
    parts.append(f"<p>Alarm: <span class='badge {'drift' if result.alarm else 'ok'}'>{alarm}</span></p>")
    if result.alarm_reasons:
        items = "".join(f"<li>{esc(r)}</li>" for r in result.alarm_reasons)
        parts.append(f"<h2>Alarm</h2><ul>{items}</ul>")
    if result.reasons:
        items = "".join(f"<li>{esc(r)}</li>" for r in result.reasons)
        parts.append(f"<h2>Drift (diagnosis)</h2><ul>{items}</ul>")
    parts.append("<h2>Feature drift</h2>")
    plot = _drift_plot(result.features)
    if plot:
        parts.append(plot)
    rows = []
    for f in [*result.features, *([result.prediction] if result.prediction else [])]:
        rows.append(
            [
                esc(f.feature),
                esc(f.kind),
                esc(f.test or "skipped"),
                _fmt(f.statistic),
                _fmt(f.p_value),
                _fmt(f.threshold, 4),
                _fmt(f.drift_score, 2),
                _fmt(f.psi) + ("" if f.psi_counts or f.psi is None else " (noisy)"),
                esc(f.psi_level or "–"),
                _fmt(f.n_window),
                _verdict(f.drift_detected),
            ]
        )
    parts.append(
        _table(
            [
                "feature",
                "kind",
                "test",
                "statistic",
                "p-value",
                "threshold",
                "score",
                "PSI",
                "PSI level",
                "n window",
                "verdict",
            ],
            rows,
            raw_cells=True,
        )
    )
    if result.skipped_columns:
        parts.append(
            "<p>Not monitored: "
            + ", ".join(f"{esc(name)} ({esc(why)})" for name, why in result.skipped_columns.items())
            + "</p>"
        )
    parts.append("<h2>Scores</h2>")
    reference_scores = result.proxies_reference.score if result.proxies_reference else None
    parts.append(_score_plot(reference_scores, result.proxies_window.score))
    proxy_rows = []
    for label, attr in (
        ("positive rate", "positive_rate"),
        ("high-risk share", "high_risk_share"),
    ):
        ref_value = getattr(result.proxies_reference, attr) if result.proxies_reference else None
        proxy_rows.append([label, _fmt(ref_value), _fmt(getattr(result.proxies_window, attr))])
    for label, key in (("score mean", "mean"), ("score median", "p50"), ("score p90", "p90")):
        ref_value = getattr(reference_scores, key) if reference_scores else None
        proxy_rows.append([label, _fmt(ref_value), _fmt(getattr(result.proxies_window.score, key))])
    parts.append(_table(["proxy", "reference", "window"], proxy_rows))
    if result.newcomers is not None:
        checks = int(result.settings.get("alarm_drift_checks", 2))
        parts.append("<h2>New team of authors</h2>")
        parts.append(f"<p>{esc(newcomer_status(result.newcomers, checks))}</p>")
    parts.append("<h2>Multivariate</h2>")
    if result.multivariate is not None:
        mv = result.multivariate
        parts.append(_multivariate_plot(mv))
        parts.append(
            f"<p>PCA with {mv.n_components} components ({_fmt(mv.explained_variance)} of the variance) "
            f"on {len(mv.features)} numeric features; window error {_fmt(mv.window_error)}, band "
            f"[{_fmt(mv.band_lower)}, {_fmt(mv.band_upper)}]: {_verdict(mv.drift_detected)}</p>"
        )
    else:
        parts.append("<p>Not run (see notes).</p>")
    if result.streams:
        parts.append("<h2>Streaming detectors</h2>")
        parts.append(
            _table(
                ["detector", "target", "warm-up", "detections", "first at row", "verdict"],
                [
                    [
                        esc(s.detector),
                        esc(s.target),
                        str(s.n_warmup),
                        str(s.detections),
                        _fmt(s.first_detection),
                        _verdict(s.drift_detected),
                    ]
                    for s in result.streams
                ],
                raw_cells=True,
            )
        )
    parts.append("<h2>Performance</h2>")
    rz, est = result.realized, result.estimated
    parts.append(
        (
            f"<p>Realized on the {rz.n_matured} labels that arrived during the window ({rz.n_positive} "
            f"defective, {rz.n_negative} clean; commits served up to the label horizon before). "
            if rz.basis == "arrived"
            else f"<p>{rz.n_matured} of {rz.n_window} predictions have matured labels ({rz.n_positive} "
            f"defective, {rz.n_negative} clean). "
        )
        + f"Estimates use CBPE on all {est.n} scores"
        + (
            f"; reference calibration error {_fmt(est.reference_calibration_error)}"
            f" ({'reliable' if est.reliable else 'not reliable'})"
            if est.reference_calibration_error is not None
            else "; calibration unknown (no labelled reference)"
        )
        + ".</p>"
    )
    perf_rows = [
        ["ROC-AUC", _fmt(rz.roc_auc), _fmt(est.roc_auc)],
        ["F1", _fmt(rz.f1), _fmt(est.f1)],
        ["precision", _fmt(rz.precision), _fmt(est.precision)],
        ["recall", _fmt(rz.recall), _fmt(est.recall)],
        ["Brier", _fmt(rz.brier), _fmt(est.brier)],
        [f"Recall@{round(rz.effort_share * 100)}% effort", _fmt(rz.recall_at_effort), "–"],
    ]
    parts.append(_table(["metric", "realized (matured)", "estimated (CBPE)"], perf_rows))
    if result.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in result.notes) + "</ul>")
    parts.append("<h2>Settings</h2>")
    parts.append(_table(["setting", "value"], [[k, str(v)] for k, v in result.settings.items()]))
    parts.append("</body></html>\n")
    return "".join(parts)


def write_html(result: MonitoringResult, path: Path, context: Sequence[str] = ()) -> Path:
    """Write :func:`render_html` to ``path`` (parent folders created); returns the path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(result, context), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the HTML report to {path}: {exc.strerror or exc}") from None
    return path
