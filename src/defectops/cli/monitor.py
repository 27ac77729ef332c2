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

from defectops.cli._support import app_settings, repository_model
from defectops.console import print_json, print_table, stdout

if TYPE_CHECKING:
    from defectops.config import MonitoringSettings
    from defectops.monitoring import AlertReport, MonitoringResult
    from defectops.pipeline import ModelMonitoring

ALERT_STATE_FILE = Path("monitoring") / "alert-state.json"
#: Model mode writes one HTML report per run here (under the workspace), named by version and time.
REPORTS_DIR = Path("monitoring") / "reports"


def monitor(
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="File mode: reference snapshot (Parquet) with the feature columns, ideally 'score' and "
            "'label'. Without --reference/--window the workspace's model and prediction log are monitored.",
            show_default=False,
        ),
    ] = None,
    window: Annotated[
        Path | None,
        typer.Option(
            "--window",
            help="File mode: window of logged predictions (Parquet): features, 'score', optional 'label', "
            "'label_time', 'churn'; rows in prediction order.",
            show_default=False,
        ),
    ] = None,
    previous_window: Annotated[
        Path | None,
        typer.Option(
            "--previous-window",
            help="File mode: the window of the check before (Parquet, as --window): drift of the score or of "
            "many features is an alarm only when it is in both (DEFECTOPS_MONITOR_ALARM_DRIFT_CHECKS).",
            show_default=False,
        ),
    ] = None,
    model_name: Annotated[
        str | None,
        typer.Option(
            "--model-name",
            help="Registered model to monitor (chosen as serve chooses: the only model with a champion).",
            show_default=False,
        ),
    ] = None,
    model_version: Annotated[
        int | None,
        typer.Option(
            "--model-version", min=1, help="Version to monitor (default: the champion).", show_default=False
        ),
    ] = None,
    since: Annotated[
        str,
        typer.Option("--since", help="Served predictions since: a duration (7d, 12h, 2w) or a date."),
    ] = "7d",
    log_url: Annotated[
        str | None,
        typer.Option(
            "--log-url",
            help="Prediction log database (default: as defectops serve, predictions.db in the workspace).",
            show_default=False,
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Write the HTML report here (model mode default: <workspace>/monitoring/reports/, earlier "
            "reports kept).",
        ),
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
            help="The model's decision threshold (default: the registered one, else the window's "
            "'threshold' column, else 0.5).",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="A column not to monitor (file mode; repeatable).")
    ] = None,
) -> None:
    """Monitor drift, performance and alarms of the served model (or of a window file against a reference)."""
    from defectops.config import load_alert_settings, load_monitoring_settings
    from defectops.errors import InputError
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
    now = datetime.now(UTC)
    context: list[str] = []
    monitored: dict[str, Any] | None = None  # what --json says was monitored (file mode: nothing to add)
    if reference is None and window is None:
        if exclude or previous_window is not None:
            raise InputError("--exclude and --previous-window apply to file mode (--reference and --window)")
        watched = _monitor_model(model_name, model_version, since, log_url, threshold, settings, now)
        result = watched.result
        context = [
            f"model {watched.model_name}: {watched.period(f'--since {since}')}",
            f"reference: {watched.reference.describe()}",
        ]
        for note in (watched.learnt_note(), watched.traffic_note(settings.min_alarm_predictions)):
            if note:
                context.append(note)
        monitored = {
            "model_name": watched.model_name,
            "version": watched.version,
            "since": watched.since.isoformat(),
            "until": watched.until.isoformat(),
            "champion_from": watched.champion_from.isoformat() if watched.champion_from else None,
            "known_when_trained": watched.known_when_trained,
            "context": context,
        }
        if html is None:
            stamp = now.strftime("%Y%m%dT%H%M%SZ")
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in watched.model_name)
            html = (
                app_settings().resolved_workspace() / REPORTS_DIR / safe / f"v{watched.version}-{stamp}.html"
            )
    elif reference is None or window is None:
        raise InputError(
            "file mode needs both --reference and --window (or neither, to monitor the workspace)"
        )
    else:
        if model_name is not None or model_version is not None or log_url is not None:
            raise InputError(
                "--model-name, --model-version and --log-url monitor the workspace: drop the files"
            )
        reference_frame = load_frame(reference, "reference")
        history: list[bool] = []
        newcomer_history: list[bool] = []
        if previous_window is not None:
            before = monitor_window(
                reference_frame,
                load_frame(previous_window, "previous window"),
                now=now,
                settings=settings,
                exclude=exclude or (),
                decision_threshold=threshold,
            )
            history = [bool(before.drift_signal)]
            newcomer_history = [bool(before.newcomers and before.newcomers.signal)]
        result = monitor_window(
            reference_frame,
            load_frame(window, "window"),
            now=now,
            settings=settings,
            exclude=exclude or (),
            decision_threshold=threshold,
            drift_history=history,
            newcomer_history=newcomer_history,
        )
    html_path = write_html(result, html, context) if html is not None else None
    alerts: AlertReport | None = None
    if alert_settings.channels:
        path = state_file or app_settings().resolved_workspace() / ALERT_STATE_FILE
        alerts = notify_state_change(result, alert_settings, load_alert_state(path))
        save_alert_state(path, alerts.alert_state)
    if json_output:
        document: dict[str, Any] = result.model_dump(mode="json")
        document["monitored"] = monitored
        document["html_report"] = str(html_path) if html_path else None
        document["alerts"] = alerts.model_dump(mode="json") if alerts else None
        print_json(document)
        return
    _print_summary(result, html_path, alerts, context)


def _monitor_model(
    model_name: str | None,
    model_version: int | None,
    since: str,
    log_url: str | None,
    threshold: float | None,
    settings: MonitoringSettings,
    now: datetime,
) -> ModelMonitoring:
    """The workspace's model against its prediction log (the log and the model chosen as serve chooses)."""
    from defectops.cli.models import _nothing_registered, _registry
    from defectops.errors import InputError, NotFoundError
    from defectops.monitoring import exposition, parse_since
    from defectops.pipeline import monitor_model, monitored_version
    from defectops.predlog import PredictionLog, default_url
    from defectops.serving import ControlFile, publish_gauges, published_gauges_path

    if threshold is not None:
        raise InputError("--threshold applies to file mode; a registered model monitors at its own threshold")
    root = app_settings()
    workspace = root.resolved_workspace()
    start = parse_since(since, now)
    registry = _registry()
    if _nothing_registered(registry):
        raise NotFoundError(f"no model is registered in the workspace {workspace}: train one (defectops run)")
    serve = root.serve  # DEFECTOPS_SERVE_MODEL_NAME / _LOG_URL: what the service serves and logs to
    if model_name is not None:
        name = model_name
    elif "model_name" in serve.model_fields_set:
        name = serve.model_name
    else:
        name = repository_model(root, None, "--model-name or DEFECTOPS_SERVE_MODEL_NAME")
    version = monitored_version(registry, name, model_version)
    url = log_url or serve.log_url or default_url(workspace)
    with PredictionLog.from_url(url) as log:
        watched = monitor_model(
            registry=registry,
            log=log,
            model_name=name,
            version=version,
            since=start,
            now=now,
            settings=settings,
            waiting_days=root.label_waiting_days,
        )
    if model_version is None:  # the champion: what the service shows on /metrics
        publish_gauges(
            exposition(watched.result), published_gauges_path(ControlFile.for_model(workspace, name).path)
        )
    return watched


def _num(value: float | None, digits: int = 3, *, missing: str = "–") -> str:
    if value is None:
        return missing
    return f"{value:.{digits}f}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.{digits}g}"


def _not_judged(n_matured: int, reason: str | None) -> str:
    """What a realized metric shows when it was not computed: never a number."""
    if n_matured == 0:
        return "n/a, no labels"
    if reason and reason.startswith("not enough labels"):
        return f"n/a, only {n_matured} label{'' if n_matured == 1 else 's'}"
    return "n/a"


def _print_summary(
    result: MonitoringResult, html_path: Path | None, alerts: AlertReport | None, context: list[str]
) -> None:
    from rich.markup import escape
    from rich.table import Table

    if result.alarm:
        headline = "[bold red]ALARM[/]"
    elif result.state == "drift":
        headline = "[bold yellow]OK, with drift to look at[/] (no alarm)"
    else:
        headline = "[bold green]OK[/]"
    stdout.print(
        f"{headline}  reference {result.n_reference} rows, window {result.n_window} predictions",
        highlight=False,
    )
    for line in context:
        stdout.print(f"  {line}", highlight=False, markup=False)
    for reason in result.alarm_reasons:
        stdout.print(f"  alarm: {reason}", highlight=False, markup=False)
    if result.reasons:
        stdout.print("Drift (diagnosis):", highlight=False)
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
    if result.newcomers is not None:
        from defectops.monitoring import newcomer_status

        checks = int(result.settings.get("alarm_drift_checks", 2))
        stdout.print(
            f"New team of authors: {newcomer_status(result.newcomers, checks)}", highlight=False, markup=False
        )
    proxies = result.proxies_window
    stdout.print(
        f"Positive rate {_num(proxies.positive_rate)} at threshold {_num(proxies.decision_threshold)}, "
        f"high-risk share {_num(proxies.high_risk_share)}, mean score {_num(proxies.score.mean)}",
        highlight=False,
    )
    perf = Table(title="Performance")
    rz, est = result.realized, result.estimated
    matured = "arrived in the window" if rz.basis == "arrived" else "matured"
    realized_title = (
        f"realized ({rz.n_matured} {matured}: {rz.n_positive} defective, {rz.n_negative} clean)"
        if rz.n_matured
        else f"realized (no labels {matured})"
    )
    for column in ("metric", realized_title, "estimated (CBPE)"):
        perf.add_column(column, justify="left" if column == "metric" else "right")
    unknown = _not_judged(rz.n_matured, rz.skipped_reason)
    perf.add_row("ROC-AUC", _num(rz.roc_auc, missing=unknown), _num(est.roc_auc))
    perf.add_row("F1", _num(rz.f1, missing=unknown), _num(est.f1))
    perf.add_row("Brier", _num(rz.brier, missing=unknown), _num(est.brier))
    perf.add_row(
        f"Recall@{round(rz.effort_share * 100)}% effort", _num(rz.recall_at_effort, missing=unknown), "–"
    )
    stdout.print(perf)
    if rz.skipped_reason:
        stdout.print(f"realized: {rz.skipped_reason}", highlight=False, markup=False)
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
