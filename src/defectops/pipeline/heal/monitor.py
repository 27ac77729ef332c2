"""Step 4, monitor: the champion's served predictions of the last ``window_days`` against its training
reference (:func:`defectops.monitoring.monitor_window`); the gauges are published for the service's
``/metrics``. The record's outcome is ``alarm`` (may trigger a challenger), ``drift`` (diagnosis only) or
``ok``.

Realized performance is judged on the labels that arrived during the window for commits the champion served
up to ``label_horizon_days`` before (:func:`arrivals`); drift of the score or of many features alarms only
when the previous monitored cycle of the champion had a drift signal too (its record's evidence
``drift_signal``), as ``defectops monitor`` compares with the period before its window."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from defectops.pipeline.heal.context import HealContext
from defectops.pipeline.heal.cycle import Cycle
from defectops.predlog import unlearnt
from defectops.training import risk_bands_of

if TYPE_CHECKING:
    import pandas as pd

    from defectops.config import MonitoringSettings
    from defectops.monitoring import MonitoringResult
    from defectops.predlog import PredictionLog


@dataclass(frozen=True, slots=True)
class Arrivals:
    """The labels realized performance is judged on, and how many more arrived that the version had learnt."""

    rows: pd.DataFrame
    known_when_trained: int


def arrivals(
    log: PredictionLog,
    *,
    model_name: str,
    version: int,
    since: datetime,
    now: datetime,
    settings: MonitoringSettings,
    learnt_at: datetime | None,
    as_of: datetime | None = None,
) -> Arrivals:
    """The labels that arrived in ``(since, now]`` for the version's served predictions of the last
    ``label_horizon_days`` (:func:`defectops.monitoring.arrived_labels`), without those dated up to
    ``learnt_at``, when the version learnt its labels: a request for an older commit carries a label the
    version may have trained on, no evidence of how it does live (:func:`defectops.predlog.unlearnt`; a window
    that starts before the version was trained, ``defectops monitor --since 30d``, would count them)."""
    from defectops.monitoring import arrived_labels

    oldest = now - timedelta(days=settings.label_horizon_days)
    labelled = log.joined(
        oldest, now, model_name=model_name, model_version=str(version), served=True, as_of=as_of
    )
    arrived = arrived_labels(labelled, since=since, now=now, horizon_days=settings.label_horizon_days)
    live = unlearnt(arrived, learnt_at)
    return Arrivals(rows=live, known_when_trained=len(arrived) - len(live))


def served_period(
    count: int,
    version: int,
    start: datetime,
    end: datetime,
    *,
    bound: str,
    champion_from: datetime | None,
    changes: int | None = None,
) -> str:
    """The period a monitoring covers, in the words ``defectops monitor`` and heal's monitor step both use:
    ``163 served predictions of v1 from 2026-11-28 23:23 to 2026-12-05 23:23 UTC (--since 7d; v1 champion
    from 2026-12-05 21:55 UTC on)``.

    Why one wording: monitor's window starts where ``--since`` says and heal's where the champion was promoted
    (within ``window_days``); the two showed different dates over the same predictions, with nothing to tell
    why. ``bound`` says what chose ``start``; the promotion is added when it falls in the period, since then
    no prediction of the version can be older than it, whatever the start. ``changes`` is how many distinct
    changes they scored, said when fewer (a change scored again counts once in monitoring).
    """
    of = f" ({changes} changes)" if changes is not None and changes != count else ""
    text = (
        f"{count} served prediction{'' if count == 1 else 's'}{of} of v{version} from "
        f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC ({bound}"
    )
    if champion_from is not None and champion_from >= start:
        text += f"; v{version} champion from {champion_from:%Y-%m-%d %H:%M} UTC on"
    return text + ")"


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """The monitor step: the monitoring of the window (None when it had too few served predictions)."""

    monitoring: MonitoringResult | None


def monitor_step(ctx: HealContext, cycle: Cycle, champion: int) -> MonitorResult:
    from defectops.config import MonitoringSettings
    from defectops.monitoring import (
        exposition,
        latest_per_change,
        monitor_window,
        newcomer_status,
        traffic_hint,
    )
    from defectops.serving import publish_gauges, published_gauges_path

    now = cycle.now
    promoted = ctx.champion_since(champion)
    since = max(now - timedelta(days=ctx.settings.window_days), promoted)
    window = ctx.log.window(
        since, now, model_name=ctx.model_name, model_version=str(champion), served=True, as_of=now
    )
    settings = ctx.monitoring or MonitoringSettings()
    arrived = arrivals(
        ctx.log,
        model_name=ctx.model_name,
        version=champion,
        since=since,
        now=now,
        settings=settings,
        learnt_at=ctx.registry.labels_learnt_at(ctx.model_name, champion),
        as_of=now,
    )
    labelled = arrived.rows
    base = {
        "since": since,
        "until": now,
        "as_of": now,
        "n_window": len(window),
        "n_arrived": len(labelled),
        "known_when_trained": arrived.known_when_trained,
    }
    # A change scored more than once counts once (monitoring judges the window so): the minimum is of changes.
    changes = latest_per_change(window)[0]
    arrived_changes = len(latest_per_change(labelled)[0])
    period = served_period(
        len(window),
        champion,
        since,
        now,
        bound=f"at most the last {ctx.settings.window_days:g} days, DEFECTOPS_HEAL_WINDOW_DAYS",
        champion_from=promoted,
        changes=len(changes),
    )
    # A window too small for drift is still judged on its arrived labels when they are enough for the metric.
    if len(changes) == 0 or (
        len(changes) < ctx.settings.min_window_predictions and arrived_changes < settings.min_realized_labels
    ):
        hint = traffic_hint(len(changes), now - since, ctx.settings.min_window_predictions)
        if hint and since > now - timedelta(days=ctx.settings.window_days):  # cut by the promotion: more
            # window days would add none of the champion's predictions; the window grows by itself
            hint += f" (v{champion} is champion only since {promoted:%Y-%m-%d %H:%M} UTC)"
        elif hint:
            hint += " (DEFECTOPS_HEAL_WINDOW_DAYS)"
        cycle.add(
            "monitor",
            "skipped",
            f"{period}: fewer than {ctx.settings.min_window_predictions}, and {arrived_changes} "
            f"label{'' if arrived_changes == 1 else 's'} arrived (fewer than {settings.min_realized_labels})"
            + (f"; {hint}" if hint else ""),
            champion=champion,
            evidence=base,
        )
        return MonitorResult(monitoring=None)
    model = ctx.model(champion)
    reference, reference_span = ctx.monitoring_reference(champion)
    base["reference"] = reference_span
    features = [f for f in model.meta.features if f in window.columns and f in reference.columns]
    baseline = ctx.registry.get_version(ctx.model_name, champion).metrics.get("roc_auc")
    bands = risk_bands_of(model.estimator, threshold=model.meta.threshold)
    earlier = [  # the champion's earlier monitored cycles, oldest first
        r
        for r in ctx.records(step="monitor")
        if r.champion_version == champion
        and r.outcome in ("ok", "drift", "alarm")
        and r.cycle_id != cycle.cycle_id
    ]
    history = [bool(r.evidence.get("drift_signal")) for r in earlier]  # had they a drift signal?
    newcomer_history = [bool(r.evidence.get("newcomer_signal")) for r in earlier]
    result = monitor_window(
        reference,
        window,
        now=now,
        settings=settings,
        labelled=labelled,
        drift_history=history,
        newcomer_history=newcomer_history,
        features=features,
        decision_threshold=model.meta.threshold,
        high_risk_threshold=bands.high if bands is not None else None,
        history=ctx.reference(champion),  # the growth of age-growing features is fitted on all of it
        baseline_roc_auc=baseline if baseline is not None and math.isfinite(baseline) else None,
        rescore=model.score if "score" in reference.columns else None,
    )
    cycle.artifacts["heal/monitoring.json"] = json.loads(result.model_dump_json())
    publish_gauges(
        exposition(result), published_gauges_path(ctx.control.path)
    )  # the service exposes its gauges on /metrics
    realized = result.realized
    for key, value in (
        ("monitor.drift", 1.0 if result.state == "drift" else 0.0),
        ("monitor.alarm", 1.0 if result.alarm else 0.0),
        ("monitor.n_window", float(result.n_window)),
        ("monitor.n_matured", float(realized.n_matured)),
        ("monitor.realized_roc_auc", realized.roc_auc),
        ("monitor.realized_f1", realized.f1),
    ):
        if value is not None and math.isfinite(value):
            cycle.metrics[key] = float(value)
    # "alarm" may act (decide); "drift" is diagnosis only: a few features moved, performance did not.
    outcome = "alarm" if result.alarm else result.state
    if result.alarm:
        summary = "; ".join(result.alarm_reasons[:10])
    elif result.drift_signal:
        needed = settings.alarm_drift_checks
        summary = (
            f"no alarm yet: drift in {result.drift_checks} monitored cycle(s) in a row, {needed} needed: "
            + "; ".join(result.drift_signal)
        )
    elif result.reasons:
        summary = (
            f"no alarm; diagnosis: {len(result.drifted_features)} of {len(result.features)} features drift "
            f"({', '.join(result.drifted_features) or 'none'})"
        )
    else:
        summary = "no drift, no alarm"
    summary += f"; {period}"
    newcomers = result.newcomers
    if newcomers is not None and newcomers.signal and not result.alarm:
        status = newcomer_status(newcomers, settings.alarm_drift_checks)
        summary += f"; new team of authors (diagnosis): {status}"
    cycle.add(
        "monitor",
        outcome,
        summary,
        champion=champion,
        evidence={
            **base,
            "features": features,
            "alarm_reasons": result.alarm_reasons,
            "drift_signal": result.drift_signal,
            "drift_checks": result.drift_checks,
            # the newcomer check (a new team of authors): the next cycle reads its signal (persistence)
            "newcomer_signal": bool(newcomers and newcomers.signal),
            "newcomers": newcomers.model_dump(mode="json") if newcomers is not None else None,
            "reasons": result.reasons,
            "drifted_features": result.drifted_features,
            # every feature's drift on one scale (1 = its test's threshold): the web UI's heat map of cycles
            "feature_drift": {
                f.feature: f.drift_score
                for f in result.features
                if f.drift_score is not None and math.isfinite(f.drift_score)
            },
            "prediction_drift": _finite(result.prediction.drift_score if result.prediction else None),
            "realized": realized.model_dump(mode="json"),
            "estimated": {"roc_auc": result.estimated.roc_auc, "f1": result.estimated.f1},
            "monitoring_settings": result.settings,
        },
    )
    return MonitorResult(monitoring=result)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
