"""Monitoring over time and the heal timeline, from the heal loop's records and the prediction log.

Each monitor step of a heal cycle stores its evidence (window, per-feature drift on one scale where 1 is the
test's threshold, realized and estimated performance, alarm reasons) in the heal audit store; a run of them
is the history of monitoring, so the drift heat map has one column per monitored window, not only the latest.
The score distribution, the label counts by source and the reviewer answers per window come from the
prediction log itself, so they exist even before the loop has run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from defectops.errors import InputError
from defectops.predlog import SCORE_BINS
from defectops.registry import AuditEvent, HealRecord
from defectops.serving.ui.overview import alias_event, heal_audit, heal_record, part

if TYPE_CHECKING:
    from defectops.serving.service import PredictionService

#: Monitor records (windows) on the heat map.
MONITOR_WINDOWS: Final = 30
#: Heal records on the timeline.
TIMELINE_RECORDS: Final = 300


def monitoring(service: PredictionService, now: datetime, *, windows: int, days: int) -> dict[str, Any]:
    """The monitoring page's document: drift per feature per monitored window, performance, alerts, and per
    log window the score distribution, labels by source and reviewer feedback."""
    if not 1 <= windows <= 52:
        raise InputError(f"windows must lie in 1..52, got {windows}")
    if not 1 <= days <= 365:
        raise InputError(f"days must lie in 1..365, got {days}")
    return {
        "generated_at": now.isoformat(),
        "model_name": service.manager.model_name,
        "monitor": part(lambda: _monitor_history(service)),
        "log_windows": _log_windows(service, now, windows=windows, days=days),
        "score_bins": [round(i / SCORE_BINS, 2) for i in range(SCORE_BINS + 1)],
    }


def _monitor_history(service: PredictionService) -> dict[str, Any]:
    records = heal_audit(service).latest(
        HealRecord, service.manager.model_name, MONITOR_WINDOWS, step="monitor"
    )
    judged = [r for r in records if r.outcome != "skipped"]
    features = sorted({name for r in judged for name in (r.evidence.get("feature_drift") or {})})
    columns = []
    for record in judged:
        evidence = record.evidence
        realized = evidence.get("realized") or {}
        estimated = evidence.get("estimated") or {}
        drift = evidence.get("feature_drift") or {}
        columns.append(
            {
                "at": record.at.isoformat(),
                "since": evidence.get("since"),
                "until": evidence.get("until"),
                "outcome": record.outcome,
                "champion_version": record.champion_version,
                "n_window": evidence.get("n_window"),
                "drift": [drift.get(name) for name in features],
                "drifted": evidence.get("drifted_features") or [],
                "prediction_drift": evidence.get("prediction_drift"),
                "realized_roc_auc": realized.get("roc_auc"),
                "realized_f1": realized.get("f1"),
                "n_matured": realized.get("n_matured"),
                "n_matured_defective": realized.get("n_positive"),
                "estimated_roc_auc": estimated.get("roc_auc"),
                "estimated_f1": estimated.get("f1"),
            }
        )
    alerts = [
        {
            "at": r.at.isoformat(),
            "outcome": r.outcome,
            "reason": r.reason,
            "alarm_reasons": r.evidence.get("alarm_reasons") or [],
            "reasons": r.evidence.get("reasons") or [],
            "champion_version": r.champion_version,
        }
        for r in reversed(records)
        if r.outcome in ("alarm", "drift")
    ]
    skipped = [heal_record(r, evidence=False) for r in records if r.outcome == "skipped"][-5:]
    return {"features": features, "windows": columns, "alerts": alerts, "skipped": skipped}


def _log_windows(
    service: PredictionService, now: datetime, *, windows: int, days: int
) -> list[dict[str, Any]]:
    end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    edges = [end - timedelta(days=days * (windows - i)) for i in range(windows + 1)]
    summaries = service.log.window_summaries(edges, model_name=service.manager.model_name)
    return [summary.as_dict() for summary in summaries]


def heal_timeline(service: PredictionService, now: datetime) -> dict[str, Any]:
    """The heal page's document: every recent decision with its evidence, newest first, and the alias moves
    (promotions, rollbacks, archived challengers) beside them."""
    name = service.manager.model_name

    def records() -> list[dict[str, Any]]:
        stored = heal_audit(service).latest(HealRecord, name, TIMELINE_RECORDS)
        return [heal_record(record) for record in reversed(stored)]

    def moves() -> list[dict[str, Any]]:
        registry = service.manager.registry
        events = registry.audit.latest(AuditEvent, name, TIMELINE_RECORDS, registry=registry.registry_key)
        return [alias_event(event) for event in reversed(events)]

    return {
        "generated_at": now.isoformat(),
        "model_name": name,
        "records": part(records),
        "moves": part(moves),
    }
