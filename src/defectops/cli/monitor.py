"""``defectops monitor``: compare a window of logged predictions with the reference snapshot.

A plain function with Annotated Typer options; the CLI module registers it. It always exits 0 when the
inputs are usable (drift is a finding, not a failure); unusable inputs raise InputError, which the CLI
prints as one line. Heavy imports (pandas, scipy, scikit-learn, matplotlib) happen inside the function.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from defectops.cli._support import app_settings
from defectops.console import print_json, print_table, stdout

if TYPE_CHECKING:
    from defectops.monitoring import AlertReport, MonitoringResult

ALERT_STATE_FILE = Path("monitoring") / "alert-state.json"


def monitor(
    reference: Annotated[
        Path,
        typer.Option(
            "--reference",
            help="Reference snapshot (Parquet): the feature columns, ideally 'score' and 'label'.",
            show_default=False,
        ),
    ],
    window: Annotated[
        Path,
        typer.Option(
            "--window",
            help="Window of logged predictions (Parquet): features, 'score', optional 'label', "
            "'label_time', 'churn'; rows in prediction order.",
            show_default=False,
        ),
    ],
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report here.")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON document instead of tables.")
    ] = False,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            help="Slack-compatible webhook for state-change alerts (default: DEFECTOPS_ALERT_WEBHOOK_URL).",
            show_default=False,
        ),
    ] = None,
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="Alert state file remembering the last notified state "
            "(default: <workspace>/monitoring/alert-state.json when alerts are configured).",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="The model's decision threshold (default: the window's 'threshold' column, else 0.5).",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="A column not to monitor (repeatable).")
    ] = None,
) -> None:
    """Check a window of predictions for drift and performance against the reference; alert on changes."""
    from defectops.config import load_alert_settings, load_monitoring_settings
    from defectops.monitoring import (
        load_alert_state,
        load_frame,
        monitor_window,
        notify_state_change,
        save_alert_state,
        write_html,
    )

    settings = load_monitoring_settings()
    alert_settings = load_alert_settings(**({"webhook_url": webhook} if webhook else {}))
    reference_frame = load_frame(reference, "reference")
    window_frame = load_frame(window, "window")
    result = monitor_window(
        reference_frame,
        window_frame,
        now=datetime.now(UTC),
        settings=settings,
        exclude=exclude or (),
        decision_threshold=threshold,
    )
    html_path = write_html(result, html) if html is not None else None
    alerts: AlertReport | None = None
    if alert_settings.channels:
        path = state_file or app_settings().resolved_workspace() / ALERT_STATE_FILE
        alerts = notify_state_change(result, alert_settings, load_alert_state(path))
        save_alert_state(path, alerts.alert_state)
    if json_output:
        document: dict[str, Any] = result.model_dump(mode="json")
        document["html_report"] = str(html_path) if html_path else None
        document["alerts"] = alerts.model_dump(mode="json") if alerts else None
        print_json(document)
        return
    _print_summary(result, html_path, alerts)


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.{digits}g}"


def _print_summary(result: MonitoringResult, html_path: Path | None, alerts: AlertReport | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    colour = "red" if result.state == "drift" else "green"
    stdout.print(
        f"[bold {colour}]{result.state.upper()}[/]  reference {result.n_reference} rows, "
        f"window {result.n_window} predictions",
        highlight=False,
    )
    for reason in result.reasons:
        stdout.print(f"  - {reason}", highlight=False, markup=False)
    table = Table(title="Drift by feature")
    for column in ("feature", "kind", "test", "statistic", "p-value", "score", "PSI", "drift"):
        table.add_column(column, justify="left" if column in {"feature", "kind", "test"} else "right")
    rows = [*result.features, *([result.prediction] if result.prediction else [])]
    for f in rows:
        table.add_row(
            escape(f.feature),
            f.kind,
            f.test or "skipped",
            _num(f.statistic),
            _num(f.p_value),
            _num(f.drift_score, 2),
            _num(f.psi),
            "[red]yes[/]" if f.drift_detected else "no",
        )
    print_table(table)
    if result.multivariate is not None:
        mv = result.multivariate
        stdout.print(
            f"Multivariate (PCA, {mv.n_components} components): error {_num(mv.window_error)}, band "
            f"[{_num(mv.band_lower)}, {_num(mv.band_upper)}] -> {'drift' if mv.drift_detected else 'ok'}",
            highlight=False,
        )
    for stream in result.streams:
        stdout.print(
            f"{stream.detector} on {stream.target}: "
            + (f"change at window row {stream.first_detection}" if stream.drift_detected else "no change"),
            highlight=False,
        )
    proxies = result.proxies_window
    stdout.print(
        f"Positive rate {_num(proxies.positive_rate)} at threshold {proxies.decision_threshold}, high-risk "
        f"share {_num(proxies.high_risk_share)}, mean score {_num(proxies.score.mean)}",
        highlight=False,
    )
    perf = Table(title="Performance")
    for column in ("metric", f"realized ({result.realized.n_matured} matured)", "estimated (CBPE)"):
        perf.add_column(column, justify="left" if column == "metric" else "right")
    rz, est = result.realized, result.estimated
    perf.add_row("ROC-AUC", _num(rz.roc_auc), _num(est.roc_auc))
    perf.add_row("F1", _num(rz.f1), _num(est.f1))
    perf.add_row("Brier", _num(rz.brier), _num(est.brier))
    perf.add_row(f"Recall@{round(rz.effort_share * 100)}% effort", _num(rz.recall_at_effort), "–")
    stdout.print(perf)
    for note in result.notes:
        stdout.print(f"note: {note}", highlight=False, markup=False)
    if html_path is not None:
        stdout.print(f"HTML report: {html_path}", highlight=False)
    if alerts is not None:
        for outcome in alerts.outcomes:
            status = "sent" if outcome.delivered else f"NOT sent ({outcome.error})"
            stdout.print(
                f"alert {outcome.transition} via {outcome.channel} to {outcome.target}: {status}",
                highlight=False,
                markup=False,
            )
        if not alerts.outcomes:
            stdout.print(f"alerts: state {alerts.state} unchanged, nothing sent", highlight=False)
